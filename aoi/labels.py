"""The label mapping table: raw label names (folder names, annotation labels, type codes) -> project labels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml


class UnknownLabel(ValueError):
    pass


def small_labels(counts: dict[str, int], minimum: int) -> list[str]:
    """The platform manual's warning: one line per label with fewer than ``minimum`` images (0: none)."""
    return [
        f"label {label} has {n} images, fewer than {minimum} (AOI_INGEST__MIN_LABEL_IMAGES)"
        for label, n in sorted(counts.items())
        if n < minimum
    ]


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


@dataclass(frozen=True)
class LabelMap:
    labels: tuple[str, ...]
    aliases: dict[str, str] = field(default_factory=dict)
    deeppcb_types: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> LabelMap:
        """The table at ``path``, or the one shipped in ``aoi/config/labels.yaml``."""
        if path is None:
            text = resources.files("aoi.config").joinpath("labels.yaml").read_text()
        else:
            text = Path(path).read_text()
        raw = yaml.safe_load(text) or {}
        labels = tuple(raw.get("labels") or ())
        if not labels:
            raise ValueError("label map lists no labels")
        aliases = {str(k): str(v) for k, v in (raw.get("aliases") or {}).items()}
        types = {int(k): str(v) for k, v in (raw.get("deeppcb_types") or {}).items()}
        for target in [*aliases.values(), *types.values()]:
            if target not in labels:
                raise ValueError(f"label map points at {target!r}, which is not among its labels {list(labels)}")
        return cls(labels=labels, aliases=aliases, deeppcb_types=types)

    def resolve(self, raw: str) -> str:
        """Project label for ``raw``; ``UnknownLabel`` with the known names when there is none."""
        key = _norm(raw)
        for label in self.labels:
            if _norm(label) == key:
                return label
        for alias, label in self.aliases.items():
            if _norm(alias) == key:
                return label
        raise UnknownLabel(f"label {raw!r} is not in the label mapping (known: {', '.join(self.labels)})")

    def deeppcb(self, code: int) -> str:
        try:
            return self.deeppcb_types[int(code)]
        except (KeyError, ValueError):
            raise UnknownLabel(f"DeepPCB defect type {code!r} is not in the label mapping") from None
