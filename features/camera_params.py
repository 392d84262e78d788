"""The team's camera-parameter table: CSV in, parquet source out, and the machine/part pairs it knows.

CSV columns: ``machine_id, part_no, light, exposure, gain_r, gain_g, gain_b`` and optional ``effective_from``
(ISO date or time, UTC when no zone is given; default: the import time). Importing is idempotent: a row
already in the table (same machine, part, effective_from and values) is not added twice, and a file with
any bad row is refused whole, with every problem listed, so the table never holds half a file.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from aoi.settings import Settings

KEYS = ("machine_id", "part_no")
VALUES = {"light": int, "exposure": int, "gain_r": float, "gain_g": float, "gain_b": float}
COLUMNS = [*KEYS, *VALUES, "effective_from", "imported_at"]
MAX_ID = 64


class CameraParamsError(ValueError):
    """The CSV cannot be imported; the message lists every bad row."""


def table_path(settings: Settings) -> Path:
    from features.store import data_dir

    return data_dir(settings) / "camera_params.parquet"


def read_table(settings: Settings) -> pd.DataFrame:
    path = table_path(settings)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in COLUMNS})
    return pd.read_parquet(path)


def _dtype(column: str) -> str:
    if column in ("effective_from", "imported_at"):
        return "datetime64[us, UTC]"
    return {int: "int64", float: "float32"}.get(VALUES.get(column), "object")


def _timestamp(text: str, default: datetime) -> datetime:
    if not text:
        return default
    stamp = datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def parse(path: Path, now: datetime) -> pd.DataFrame:
    """The CSV's rows, checked: every problem is collected before anything is refused."""
    problems, rows = [], []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (*KEYS, *VALUES) if c not in (reader.fieldnames or [])]
        if missing:
            raise CameraParamsError(
                f"{path.name}: missing columns {', '.join(missing)} "
                f"(expected {', '.join([*KEYS, *VALUES])}[, effective_from])"
            )
        for line, raw in enumerate(reader, start=2):
            row, bad = {}, []
            for key in KEYS:
                value = (raw.get(key) or "").strip()
                if not value or len(value) > MAX_ID:
                    bad.append(f"{key} empty or longer than {MAX_ID}")
                row[key] = value
            for name, kind in VALUES.items():
                try:
                    row[name] = kind((raw.get(name) or "").strip())
                    if row[name] < 0:
                        bad.append(f"{name} is negative")
                except ValueError:
                    bad.append(f"{name}={raw.get(name)!r} is not {'an integer' if kind is int else 'a number'}")
            try:
                row["effective_from"] = _timestamp((raw.get("effective_from") or "").strip(), now)
            except ValueError:
                bad.append(f"effective_from={raw.get('effective_from')!r} is not an ISO date or time")
            if bad:
                problems.append(f"line {line}: {'; '.join(bad)}")
            rows.append(row)
    if problems:
        raise CameraParamsError(f"{path.name}: {len(problems)} bad rows, nothing imported\n" + "\n".join(problems[:50]))
    if not rows:
        raise CameraParamsError(f"{path.name}: no rows")
    frame = pd.DataFrame(rows)
    duplicated = frame.duplicated(subset=[*KEYS, "effective_from"], keep=False)
    if duplicated.any():
        pairs = sorted(
            {f"{r.machine_id}/{r.part_no}@{r.effective_from.isoformat()}" for r in frame[duplicated].itertuples()}
        )
        raise CameraParamsError(f"{path.name}: two rows for the same machine, part and time: {', '.join(pairs[:10])}")
    return frame


def import_csv(settings: Settings, path: Path, now: datetime | None = None) -> dict:
    """Append the CSV's new rows to the parquet source; returns counts."""
    now = now or datetime.now(UTC)
    incoming = parse(path, now)
    incoming["imported_at"] = now
    table = read_table(settings)
    key = [*KEYS, "effective_from"]
    merged = incoming.merge(table[[*key, *VALUES]], on=key, how="left", suffixes=("", "_old"), indicator=True)
    changed = merged[
        (merged["_merge"] == "both")
        & (merged[[f"{v}_old" for v in VALUES]].to_numpy() != merged[list(VALUES)].to_numpy()).any(axis=1)
    ]
    if not changed.empty:
        pairs = sorted(f"{r.machine_id}/{r.part_no}" for r in changed.itertuples())
        raise CameraParamsError(
            f"{path.name}: rows for {', '.join(pairs[:10])} change values already in force "
            "from the same effective_from; give the new values a later effective_from"
        )
    new = incoming[(merged["_merge"] == "left_only").to_numpy()]
    if not new.empty:
        out = pd.concat([table, new[COLUMNS]], ignore_index=True) if len(table) else new[COLUMNS].copy()
        for column in COLUMNS:
            out[column] = out[column].astype(_dtype(column))
        from features.store import write_parquet

        write_parquet(out, table_path(settings))
    return {
        "file": str(path),
        "rows": len(incoming),
        "added": len(new),
        "already_there": len(incoming) - len(new),
        "table_rows": len(table) + len(new),
        "table": str(table_path(settings)),
    }


def pairs(settings: Settings) -> list[dict]:
    """The machine/part pairs of the table with the row in force now (the latest not in the future)."""
    table = read_table(settings)
    now = pd.Timestamp.now(tz="UTC")
    current = table[table["effective_from"] <= now].sort_values("effective_from").groupby(list(KEYS)).tail(1)
    current = current.sort_values(list(KEYS))
    return [
        {
            "machine_id": r.machine_id,
            "part_no": r.part_no,
            **{
                v: round(float(getattr(r, v)), 4) if kind is float else int(getattr(r, v)) for v, kind in VALUES.items()
            },
            "effective_from": r.effective_from.isoformat(),
        }
        for r in current.itertuples()
    ]
