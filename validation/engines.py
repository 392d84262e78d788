"""Run a spec's checks over the per-image metrics table: with Great Expectations (the system's record,
with Data Docs) or with plain pandas (the same verdicts; the baseline of ``bench/validation.py``).

Both return a ``Verdict``: for each failing image the checks it failed, and the set checks that failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from validation.plan import Check, checks_for, partition
from validation.specs import Spec


@dataclass
class Verdict:
    failed: dict[int, list[str]] = field(default_factory=dict)  # image id -> descriptions of failed checks
    set_failures: list[dict] = field(default_factory=list)
    evaluated: int = 0
    report_path: str | None = None

    def by_check(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for reasons in self.failed.values():
            for reason in reasons:
                counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))

    def merge(self, other: Verdict) -> None:
        for image, reasons in other.failed.items():
            self.failed.setdefault(image, []).extend(reasons)
        self.set_failures += other.set_failures
        self.evaluated += other.evaluated


def _groups(spec: Spec, frame: pd.DataFrame):
    """(group name, checks, images) for each set of images judged by the same limits."""
    for group, part in partition(spec, frame):
        yield group.name, checks_for(spec, group.machine, group.part, group.label), part


def _mix_failure(check: Check, frame: pd.DataFrame, group: str) -> dict:
    counts = frame[check.column].value_counts().to_dict()
    return {"check": check.description, "group": group, "counts": {str(k): int(v) for k, v in counts.items()}}


def run_pandas(spec: Spec, frame: pd.DataFrame) -> Verdict:
    """The same verdicts as the GX checkpoint, from boolean masks."""
    verdict = Verdict(evaluated=len(frame))
    for group, checks, part in _groups(spec, frame):
        for check in checks:
            column = part[check.column]
            if check.kind == "one_value":
                if column.nunique(dropna=True) > 1:
                    verdict.set_failures.append(_mix_failure(check, part, group))
                continue
            present = column.notna()  # like GX map expectations, missing values are not judged
            if check.kind == "between":
                ok = pd.Series(True, index=part.index)
                if check.low is not None:
                    ok &= column >= check.low
                if check.high is not None:
                    ok &= column <= check.high
            else:
                ok = column.isin(check.values)
            for image in part.loc[present & ~ok, "id"]:
                verdict.failed.setdefault(int(image), []).append(check.description)
    return verdict


class GXRunner:
    """Specs as Expectation Suites in a file data context under ``AOI_HOME/gx``; Data Docs under ``docs_dir``."""

    DATASOURCE = "aoi_image_metrics"

    def __init__(self, home: Path, docs_dir: Path) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="file", project_root_dir=str(home))
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        sites = self.context.list_data_docs_sites()
        if sites.get("local_site") != site:
            if "local_site" in sites:
                self.context.update_data_docs_site("local_site", site)
            else:
                self.context.add_data_docs_site("local_site", site)
        bars = self.context.variables.progress_bars  # an object when set, a dict when read back from disk
        if (bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)) is not False:
            # GX's own tqdm bars ignore TQDM_DISABLE; this is the switch that silences them.
            self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
            self.context.variables.save()
        self.docs_index = docs_dir / "index.html"

    def _datasource(self):
        try:
            return self.context.data_sources.get(self.DATASOURCE)
        except Exception:  # GX raises different errors for a missing data source across releases
            return self.context.data_sources.add_pandas(self.DATASOURCE)

    def _expectation(self, check: Check, mostly: float):
        gxe = self.gx.expectations
        if check.kind == "between":
            return gxe.ExpectColumnValuesToBeBetween(
                column=check.column, min_value=check.low, max_value=check.high, mostly=mostly, notes=check.description
            )
        if check.kind == "in_set":
            return gxe.ExpectColumnValuesToBeInSet(
                column=check.column, value_set=list(check.values), mostly=mostly, notes=check.description
            )
        return gxe.ExpectColumnUniqueValueCountToBeBetween(
            column=check.column, min_value=0, max_value=1, notes=check.description
        )

    def _checkpoint(self, spec: Spec, group: str, checks: list[Check]):
        name = re.sub(r"[^A-Za-z0-9_.@-]", "_", f"{spec.key}.{group}")
        source = self._datasource()
        try:
            asset = source.get_asset(name)
        except LookupError:
            asset = source.add_dataframe_asset(name)
        try:
            batch = asset.get_batch_definition(name)
        except (KeyError, LookupError):
            batch = asset.add_batch_definition_whole_dataframe(name)
        suite = self.gx.ExpectationSuite(name=name, expectations=[self._expectation(c, spec.mostly) for c in checks])
        suite = self.context.suites.add_or_update(suite)
        definition = self.context.validation_definitions.add_or_update(
            self.gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        checkpoint = self.gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[self.gx.checkpoint.UpdateDataDocsAction(name="data-docs")],
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]},
        )
        return self.context.checkpoints.add_or_update(checkpoint)

    def run(self, spec: Spec, frame: pd.DataFrame) -> Verdict:
        verdict = Verdict(evaluated=len(frame), report_path=str(self.docs_index))
        for group, checks, part in _groups(spec, frame):
            checkpoint = self._checkpoint(spec, group, checks)
            result = checkpoint.run(batch_parameters={"dataframe": part.reset_index(drop=True)})
            by_config = {(c.column, c.description): c for c in checks}
            for run in result.run_results.values():
                for item in run.results:
                    config = item.expectation_config
                    check = by_config[(config.kwargs["column"], config.notes)]
                    if not check.row_check:
                        if not item.success:
                            verdict.set_failures.append(_mix_failure(check, part, group))
                        continue
                    for row in item.result.get("unexpected_index_list") or []:
                        verdict.failed.setdefault(int(row["id"]), []).append(check.description)
        return verdict
