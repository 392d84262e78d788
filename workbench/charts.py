"""Server-rendered inline SVG charts: the training records' trend and the threshold explorer's curves.

No JavaScript and no chart library: each function returns SVG markup (``markupsafe.Markup``, so a template puts it
in as is) whose coordinates a test can read back. Every text put in the markup is escaped.

The trend's y range is chosen from the figures themselves (not 0..100 %), so a one-point change between two runs
is a visible step; runs without a figure (running, failed, stopped) are drawn as marked vertical lines at their
time, never as a point at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 16, 40
MIN_SPAN = 0.02  # a trend never spans less than 2 points: one point is then half the plot's height


@dataclass(frozen=True)
class TrendPoint:
    """One run on the trend: when it started, its figure (None: it has none, e.g. running or failed), its status,
    the name shown on hover and where the point links to."""

    at: datetime
    value: float | None
    status: str
    label: str
    href: str | None = None


@dataclass(frozen=True)
class CurvePoint:
    """The Unknown filter at one threshold: accepted accuracy (None when nothing is accepted) and Unknown rate."""

    threshold: float
    accepted_accuracy: float | None
    unknown_rate: float


@dataclass(frozen=True)
class Frame:
    """The plot area inside the SVG and the data ranges it maps: ``x(t)`` and ``y(v)`` give SVG coordinates."""

    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def left(self) -> float:
        return MARGIN_LEFT

    @property
    def right(self) -> float:
        return self.width - MARGIN_RIGHT

    @property
    def top(self) -> float:
        return MARGIN_TOP

    @property
    def bottom(self) -> float:
        return self.height - MARGIN_BOTTOM

    def x(self, value: float) -> float:
        if self.x_hi == self.x_lo:
            return round((self.left + self.right) / 2, 2)
        return round(self.left + (value - self.x_lo) / (self.x_hi - self.x_lo) * (self.right - self.left), 2)

    def y(self, value: float) -> float:
        return round(self.bottom - (value - self.y_lo) / (self.y_hi - self.y_lo) * (self.bottom - self.top), 2)


def y_range(values: Sequence[float], min_span: float = MIN_SPAN) -> tuple[float, float]:
    """A y range for rates in 0..1 that holds every value with a margin and spans at least ``min_span``, kept
    inside 0..1: close figures get a narrow range, so a one-point change is a visible step."""
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, (min_span - (hi - lo)) / 2, 0.0)
    lo, hi = lo - pad, hi + pad
    if lo < 0.0:
        lo, hi = 0.0, min(1.0, hi - lo)
    if hi > 1.0:
        lo, hi = max(0.0, lo - (hi - 1.0)), 1.0
    return lo, hi


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def _pct(value: float, span: float) -> str:
    return f"{value:.1%}" if span < 0.1 else f"{value:.0%}"


def _svg(frame: Frame, body: list[str], title: str, css_class: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css_class)}" role="img" '
        f'viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" height="{frame.height}">'
        f"<title>{escape(title)}</title>"
        f'<rect class="plot" x="{frame.left}" y="{frame.top}" width="{frame.right - frame.left}" '
        f'height="{frame.bottom - frame.top}" fill="none" stroke="#bbb"/>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _y_axis(frame: Frame) -> list[str]:
    out = []
    span = frame.y_hi - frame.y_lo
    for tick in _ticks(frame.y_lo, frame.y_hi):
        y = frame.y(tick)
        out.append(f'<line class="grid" x1="{frame.left}" x2="{frame.right}" y1="{y}" y2="{y}" stroke="#eee"/>')
        out.append(
            f'<text class="y-tick" x="{frame.left - 4}" y="{y + 4}" text-anchor="end" font-size="11">'
            f"{_pct(tick, span)}</text>"
        )
    return out


def trend(points: Sequence[TrendPoint], title: str = "mean detection rate", width: int = WIDTH) -> Markup:
    """The last runs over time: a line through the runs with a figure, and a marked vertical line (class
    ``marker <status>``) at the time of each run without one. Each point carries ``data-label``/``data-value``."""
    points = sorted(points, key=lambda p: p.at)
    valued = [p for p in points if p.value is not None]
    lo, hi = y_range([p.value for p in valued if p.value is not None])
    times = [p.at.timestamp() for p in points]
    frame = Frame(min(times, default=0.0), max(times, default=0.0), lo, hi, width=width)
    body = _y_axis(frame)
    if not points:
        body.append(f'<text x="{frame.left + 8}" y="{frame.top + 20}" font-size="12">no runs yet</text>')
        return _svg(frame, body, title, "trend")
    ends = [(points[0].at, "start"), (points[-1].at, "end")] if len(points) > 1 else [(points[0].at, "middle")]
    for at, anchor in ends:  # the time axis: the first and the last run's start
        body.append(
            f'<text class="x-tick" x="{frame.x(at.timestamp())}" y="{frame.bottom + 16}" text-anchor="{anchor}" '
            f'font-size="11">{escape(at.strftime("%Y-%m-%d %H:%M"))}</text>'
        )
    line = " ".join(f"{frame.x(p.at.timestamp())},{frame.y(p.value)}" for p in valued if p.value is not None)
    if len(valued) > 1:
        body.append(f'<polyline class="line" fill="none" stroke="#1f6feb" stroke-width="2" points="{line}"/>')
    for p in points:
        x = frame.x(p.at.timestamp())
        tip = escape(f"{p.label}: {p.status}" + (f", {p.value:.2%}" if p.value is not None else ", no figure"))
        if p.value is not None:
            mark = (
                f'<circle class="point" cx="{x}" cy="{frame.y(p.value)}" r="4" fill="#1f6feb" '
                f'data-label="{escape(p.label)}" data-value="{p.value:.6f}"><title>{tip}</title></circle>'
            )
        else:  # no figure: a dashed line at its time and the status, never a point at zero
            colour = "#d1242f" if p.status == "failed" else "#9a6700"
            mark = (
                f'<g class="marker {escape(p.status.replace(" ", "-"))}" data-label="{escape(p.label)}" data-x="{x}">'
                f'<line x1="{x}" x2="{x}" y1="{frame.top}" y2="{frame.bottom}" stroke="{colour}" '
                f'stroke-dasharray="4 3"/>'
                f'<text x="{x}" y="{frame.bottom + 30}" text-anchor="{_anchor(frame, x)}" font-size="11" '
                f'fill="{colour}">'
                f"{escape(p.status)}</text><title>{tip}</title></g>"
            )
        body.append(f'<a href="{escape(p.href)}">{mark}</a>' if p.href else mark)
    return _svg(frame, body, title, "trend")


def _anchor(frame: Frame, x: float) -> str:
    """Where a label at ``x`` is anchored so it stays inside the chart."""
    if x > frame.right - 50:
        return "end"
    if x < frame.left + 50:
        return "start"
    return "middle"


def thinned(curve: Sequence[CurvePoint], most: int = 200) -> list[CurvePoint]:
    """At most ``most`` points of a curve, evenly spread, keeping both ends."""
    if len(curve) <= most:
        return list(curve)
    step = (len(curve) - 1) / (most - 1)
    return [curve[round(i * step)] for i in range(most)]


def threshold_curve(curve: Sequence[CurvePoint], current: float | None = None, width: int = WIDTH) -> Markup:
    """Accepted accuracy (class ``accepted``) and Unknown rate (class ``unknown``) over the threshold (x: the
    thresholds' own range), with the evaluation's threshold as a vertical line (class ``current``)."""
    curve = sorted(thinned(curve), key=lambda c: c.threshold)
    xs = [c.threshold for c in curve] + ([current] if current is not None else [])
    frame = Frame(min(xs, default=0.0), max(xs, default=1.0), 0.0, 1.0, width=width)
    body = _y_axis(frame)
    for tick in _ticks(frame.x_lo, frame.x_hi):
        body.append(
            f'<text class="x-tick" x="{frame.x(tick)}" y="{frame.bottom + 16}" text-anchor="middle" '
            f'font-size="11">{tick:.3f}</text>'
        )
    body.append(
        f'<text x="{(frame.left + frame.right) / 2}" y="{frame.bottom + 32}" text-anchor="middle" '
        f'font-size="11">threshold (top-1 confidence)</text>'
    )
    accepted = " ".join(
        f"{frame.x(c.threshold)},{frame.y(c.accepted_accuracy)}" for c in curve if c.accepted_accuracy is not None
    )
    unknown = " ".join(f"{frame.x(c.threshold)},{frame.y(c.unknown_rate)}" for c in curve)
    body.append(f'<polyline class="accepted" fill="none" stroke="#1a7f37" stroke-width="2" points="{accepted}"/>')
    body.append(f'<polyline class="unknown" fill="none" stroke="#9a6700" stroke-width="2" points="{unknown}"/>')
    if current is not None:
        x = frame.x(current)
        body.append(
            f'<line class="current" x1="{x}" x2="{x}" y1="{frame.top}" y2="{frame.bottom}" stroke="#555" '
            f'stroke-dasharray="4 3" data-threshold="{current:.6f}"/>'
        )
    body.append(
        f'<text x="{frame.right - 4}" y="{frame.top + 14}" text-anchor="end" font-size="11" fill="#1a7f37">'
        f"accepted accuracy</text>"
        f'<text x="{frame.right - 4}" y="{frame.top + 28}" text-anchor="end" font-size="11" fill="#9a6700">'
        f"Unknown rate</text>"
    )
    return _svg(frame, body, "accepted accuracy and Unknown rate over the threshold", "threshold")
