"""The post-model rule table: upstream-code overrides and routes (docs/domain.md#line-flow), read from YAML.

A rule never touches the model's probabilities; it replaces the final label and says so in the answer
(``rule``), so the log keeps what the model said (``model_label``) beside what the line was told.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

UNKNOWN = "UNKNOWN"


class RulesError(ValueError):
    """A rule table that cannot be used; the message says what to fix."""


class Override(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    kind: Literal["gray", "color", "any"] = "any"
    upstream_codes: frozenset[str] = Field(min_length=1)
    answer: str = UNKNOWN


class Route(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(max_length=16)
    kind: Literal["gray", "color", "any"] = "any"
    labels: frozenset[str] = Field(min_length=1)


class Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    overrides: tuple[Override, ...] = ()
    routes: tuple[Route, ...] = ()
    default_route: str = Field("FINAL", max_length=16)

    def override(self, kind: str, upstream_code: str | None) -> Override | None:
        """The first override for this kind and upstream code (codes compare case-insensitively)."""
        if not upstream_code:
            return None
        code = upstream_code.strip().upper()
        return next((o for o in self.overrides if o.kind in (kind, "any") and code in o.upstream_codes), None)

    def route(self, kind: str, label: str, coarse_label: str) -> str:
        for route in self.routes:
            if route.kind in (kind, "any") and (label in route.labels or coarse_label in route.labels):
                return route.name
        return self.default_route


def load_rules(path: Path | None = None) -> Rules:
    """The table at ``path``, or the shipped ``serving/rules.yaml``."""
    if path is None:
        text, origin = resources.files("serving").joinpath("rules.yaml").read_text(), "serving/rules.yaml"
    else:
        try:
            text, origin = Path(path).read_text(), str(path)
        except OSError as err:
            raise RulesError(f"cannot read the rule table {path}: {err.strerror}") from None
    try:
        raw = yaml.safe_load(text) or {}
        rules = Rules.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as err:
        raise RulesError(f"rule table {origin} refused: {err}") from None
    # Upstream codes arrive in any case from line software; keep the table's codes upper-case to match.
    return rules.model_copy(
        update={
            "overrides": tuple(
                o.model_copy(update={"upstream_codes": frozenset(c.upper() for c in o.upstream_codes)})
                for o in rules.overrides
            )
        }
    )
