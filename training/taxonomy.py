"""Fine classes a model learns and the coarse classes its answers collapse to (docs/domain.md#line-flow)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml


class TaxonomyError(ValueError):
    pass


@dataclass(frozen=True)
class Taxonomy:
    kind: str  # gray or color
    fine: tuple[str, ...]
    coarse: dict[str, str]

    @classmethod
    def from_dict(cls, raw: dict) -> Taxonomy:
        fine = tuple(raw.get("fine") or ())
        coarse = {str(k): str(v) for k, v in (raw.get("coarse") or {}).items()}
        if not fine or len(set(fine)) != len(fine):
            raise TaxonomyError("a taxonomy needs a list of distinct fine classes")
        missing = [c for c in fine if c not in coarse]
        extra = [c for c in coarse if c not in fine]
        if missing or extra:
            raise TaxonomyError(
                f"coarse mapping must cover exactly the fine classes (missing {missing}, extra {extra})"
            )
        return cls(kind=str(raw.get("kind", "")), fine=fine, coarse=coarse)

    @classmethod
    def load(cls, kind_or_path: str) -> Taxonomy:
        """A shipped taxonomy (``gray``, ``color``) or a YAML file."""
        path = Path(kind_or_path)
        if path.suffix in (".yaml", ".yml"):
            text = path.read_text()
        else:
            try:
                text = resources.files("training").joinpath("taxonomies", f"{kind_or_path}.yaml").read_text()
            except FileNotFoundError:
                raise TaxonomyError(f"no taxonomy {kind_or_path!r}: use gray, color or a YAML file") from None
        return cls.from_dict(yaml.safe_load(text))

    def index(self, label: str) -> int:
        try:
            return self.fine.index(label)
        except ValueError:
            raise TaxonomyError(
                f"label {label} is not a fine class of the {self.kind} taxonomy {list(self.fine)}"
            ) from None

    def to_coarse(self, fine_label: str) -> str:
        return self.coarse[fine_label]

    @property
    def coarse_classes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.coarse[c] for c in self.fine))

    def as_dict(self) -> dict:
        return {"kind": self.kind, "fine": list(self.fine), "coarse": dict(self.coarse)}
