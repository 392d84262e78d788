"""The report's comparison table (docs/domain.md#blind-tests: the team compared 12 versions side by side): one column
per
model version, one row per property, blind sets last because they are the real judge."""

from __future__ import annotations

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import DatasetVersion, Evaluation, TrainingRun
from aoi.settings import Settings
from evaluation import evaluate
from export import exports
from training import registry


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _with_unknown(e: dict) -> str:
    return f"{_pct(e['accepted_accuracy'])} at {_pct(e['unknown_rate'])} Unknown"


def latest_or_new(
    settings: Settings, version: str, dataset: str, split: str | None, threshold: float, stored_only: bool = False
) -> dict | None:
    """The latest stored evaluation of ``version`` on ``dataset`` at ``threshold``; evaluated now if none (None
    instead when ``stored_only``: a web page shows what is stored and never starts an evaluation)."""
    with db.session(settings.catalog_url) as s:
        row = s.exec(
            select(Evaluation)
            .where(
                Evaluation.model_version == version,
                Evaluation.dataset == dataset,
                Evaluation.split == (split or "blind"),
                Evaluation.threshold == threshold,
            )
            .order_by(col(Evaluation.id).desc())
        ).first()
    if row is not None:
        return row.model_dump(mode="json")
    if stored_only:
        return None
    return evaluate.evaluate(settings, version, dataset, split, threshold, report=False)


NOT_EVALUATED = "not evaluated yet"


def compare(settings: Settings, versions: list[str], datasets: list[str], stored_only: bool = False) -> dict:
    """{"columns": versions, "rows": [{"row": name, version: text, ...}]}. ``stored_only``: from the stored
    evaluations alone, ``not evaluated yet`` where there is none (nothing is evaluated now)."""
    columns: dict[str, dict[str, str]] = {}
    exported = exports.exports_of(settings, versions)
    for version in versions:
        model = registry.model_row(settings, version)
        threshold = registry.threshold_of(settings, model, None)
        with db.session(settings.catalog_url) as s:
            data = s.exec(select(DatasetVersion).where(DatasetVersion.name == model.dataset)).one()
            run = db.get_row(s, TrainingRun, model.run_id)
        valid = latest_or_new(settings, version, model.dataset, "valid", threshold, stored_only)
        col = {
            "kind": model.kind,
            "stage": model.stage,
            "arch": model.arch,
            "classes": f"{len(data.taxonomy)}: {', '.join(data.taxonomy)}",
            "training data": model.dataset,
            "cleaning spec": data.spec_key or "none",
            "compression of training data": evaluate.training_compression(settings, model.dataset),
            "sampling": (f"cap {data.per_class}/class" if data.per_class else "no cap") + f", split {data.split}, "
            f"{run.config.get('per_class')}/class/epoch × {run.config.get('epochs')} epochs",
            "Unknown threshold": f"{threshold:.4f}"
            + (" (calibrated)" if model.threshold is not None else " (default)"),
            "valid accuracy": _pct(valid["accuracy"]) if valid else NOT_EVALUATED,
            "valid accuracy with Unknown filter": _with_unknown(valid) if valid else NOT_EVALUATED,
        }
        for dataset in datasets:
            try:
                e = latest_or_new(settings, version, dataset, None, threshold, stored_only)
                col[f"{dataset}: accuracy"] = _pct(e["accuracy"]) if e else NOT_EVALUATED
                col[f"{dataset}: accuracy with Unknown"] = _with_unknown(e) if e else NOT_EVALUATED
            except (evaluate.EvaluationError, registry.RegistryError) as err:
                col[f"{dataset}: accuracy"] = col[f"{dataset}: accuracy with Unknown"] = f"n/a ({err})"
        for made in exported.get(version, []):  # latency per device and parity, per precision
            col[f"export {'INT8' if made.int8 else 'fp32'}"] = exports.summary(made)
        columns[version] = col
    names = list(dict.fromkeys(k for col in columns.values() for k in col))
    return {"columns": versions, "rows": [{"row": n, **{v: columns[v].get(n, "") for v in versions}} for n in names]}


def markdown(table: dict) -> str:
    head = ["", *table["columns"]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        cells = [row["row"], *(str(row[v]).replace("|", "\\|") for v in table["columns"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
