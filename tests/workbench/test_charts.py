"""The inline SVG charts: coordinates read back from the markup, the trend's y range, its markers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from workbench import charts
from workbench.charts import CurvePoint, Frame, TrendPoint

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def group(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of ``pattern``'s first match in ``text`` (the test fails when there is none)."""
    match = re.search(pattern, text, flags)
    assert match, f"no {pattern!r} in the page"
    return match.group(1)


def circles(svg: str) -> list[tuple[float, float, str]]:
    return [
        (float(x), float(y), label)
        for x, y, label in re.findall(
            r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)" r="4" [^>]*data-label="([^"]+)"', svg
        )
    ]


def markers(svg: str) -> dict[str, tuple[str, float]]:
    return {
        label: (status, float(x))
        for status, label, x in re.findall(r'<g class="marker (\w+)" data-label="([^"]+)" data-x="([\d.]+)"', svg)
    }


def test_the_y_range_is_narrow_enough_that_one_point_is_a_visible_step():
    lo, hi = charts.y_range([0.90, 0.91])
    assert lo <= 0.90 and hi >= 0.91 and hi - lo <= 0.03  # not 0..1: one point is a third of the plot or more
    frame = Frame(0, 1, lo, hi)
    assert frame.y(0.90) - frame.y(0.91) >= (frame.bottom - frame.top) / 3
    assert charts.y_range([0.95]) == pytest.approx((0.94, 0.96))  # one run: still a 2-point span around it
    assert charts.y_range([0.999, 1.0]) == pytest.approx((0.98, 1.0))  # kept inside 0..1, span kept
    assert charts.y_range([0.0, 0.005]) == pytest.approx((0.0, 0.02))
    lo, hi = charts.y_range([0.5, 0.9])  # a wide spread keeps every value inside with a margin
    assert lo == pytest.approx(0.46) and hi == pytest.approx(0.94)


def test_the_trend_puts_runs_at_their_time_and_marks_runs_without_a_figure():
    points = [
        TrendPoint(T0, 0.90, "succeeded", "v1", "/models/v1"),
        TrendPoint(T0 + timedelta(days=1), None, "failed", "run 2"),
        TrendPoint(T0 + timedelta(days=3), 0.91, "succeeded", "v3", "/models/v3"),
        TrendPoint(T0 + timedelta(days=4), None, "running", "run 4"),
    ]
    svg = str(charts.trend(points))
    drawn = circles(svg)
    assert [label for *_, label in drawn] == ["v1", "v3"]  # only the runs with a figure are points
    frame = Frame(T0.timestamp(), (T0 + timedelta(days=4)).timestamp(), *charts.y_range([0.90, 0.91]))
    (x1, y1, _), (x3, y3, _) = drawn
    assert (x1, x3) == (frame.left, frame.x((T0 + timedelta(days=3)).timestamp()))  # time on x, not run number
    assert x3 == pytest.approx(frame.left + 0.75 * (frame.right - frame.left), abs=0.01)
    assert (y1, y3) == (frame.y(0.90), frame.y(0.91)) and y1 - y3 > 40  # one point: a visible step in pixels
    line = re.search(r'<polyline class="line"[^>]* points="([^"]+)"', svg)
    assert line and line.group(1) == f"{x1},{y1} {x3},{y3}"  # the line joins the figures only, never a zero
    marked = markers(svg)
    assert marked == {
        "run 2": ("failed", frame.x((T0 + timedelta(days=1)).timestamp())),
        "run 4": ("running", frame.right),
    }
    assert 'href="/models/v1"' in svg and "2026-03-01 00:00" in svg and "2026-03-05 00:00" in svg


def test_the_trend_escapes_what_it_shows_and_survives_no_runs():
    svg = str(charts.trend([TrendPoint(T0, None, "failed", "<script>")]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "no runs yet" in str(charts.trend([]))


def test_the_threshold_curve_plots_both_figures_over_the_threshold():
    curve = [
        CurvePoint(0.5, 0.80, 0.0),
        CurvePoint(0.7, 0.90, 0.2),
        CurvePoint(0.9, 1.0, 0.6),
        CurvePoint(0.95, None, 1.0),
    ]
    svg = str(charts.threshold_curve(curve, current=0.7))
    frame = Frame(0.5, 0.95, 0.0, 1.0)
    accepted = group(r'<polyline class="accepted"[^>]* points="([^"]+)"', svg)
    unknown = group(r'<polyline class="unknown"[^>]* points="([^"]+)"', svg)
    assert accepted.split() == [f"{frame.x(t)},{frame.y(a)}" for t, a in ((0.5, 0.8), (0.7, 0.9), (0.9, 1.0))]
    assert unknown.split() == [f"{frame.x(c.threshold)},{frame.y(c.unknown_rate)}" for c in curve]
    current = group(r'<line class="current" x1="([\d.]+)"', svg)
    assert float(current) == frame.x(0.7)
    many = [CurvePoint(i / 1000, 0.9, i / 1000) for i in range(1000)]
    thinned = charts.thinned(many, 200)
    assert len(thinned) == 200 and thinned[0] == many[0] and thinned[-1] == many[-1]
