"""Names and values checked before a flow starts: a user error is one line and exit code 2, and no flow run (with
Prefect's traceback in the terminal and a failed run in the UI) is started for it."""

from __future__ import annotations

import datetime as dt
import re

from aoi.settings import Settings
from cli.output import fail


def dataset_version(settings: Settings, name: str, as_json: bool, role: str | None = None) -> dict:
    """The dataset version ``name``; ``role`` (train or blind) when the command needs one."""
    from datasets.versions import DatasetError, describe

    try:
        version = describe(settings.catalog_url, name)
    except DatasetError as err:
        fail(str(err), as_json, code=2)
    if role == "train" and version["role"] != "train":
        fail(f"{name} is a blind set: blind sets evaluate models, they never train them", as_json, code=2)
    return version


def new_dataset_version(settings: Settings, name: str, as_json: bool) -> None:
    from datasets.versions import DatasetError, describe

    try:
        describe(settings.catalog_url, name)
    except DatasetError:
        return
    fail(f"dataset version {name} exists; versions are immutable, give the new one another name", as_json, code=2)


def model_version(settings: Settings, version: str, as_json: bool, stage: str | None = None):
    """The catalog row of model version ``version``; ``stage`` when the command needs one."""
    from training.registry import RegistryError, model_row

    try:
        row = model_row(settings, version)
    except RegistryError as err:
        fail(str(err), as_json, code=2)
    if stage is not None and row.stage != stage:
        fail(f"{version} is {row.stage}: only a {stage} can be promoted", as_json, code=2)
    return row


def spec(settings: Settings, ref: str, as_json: bool) -> None:
    """A spec in the catalog (NAME or NAME@VERSION), or one shipped with the code."""
    from validation.specs import SpecError
    from validation.steps import load_spec

    name, _, version = ref.partition("@")
    if not name or (version and not version.isdigit()):
        fail(f"a spec is NAME or NAME@VERSION (a whole number), not {ref!r}", as_json, code=2)
    try:
        load_spec(settings, ref)
    except SpecError as err:
        fail(str(err), as_json, code=2)


def batch(settings: Settings, batch_id: int, as_json: bool) -> None:
    from aoi.catalog.queries import batches

    if not any(b["id"] == batch_id for b in batches(settings.catalog_url)):
        fail(f"no ingest batch {batch_id} (aoi batches lists them)", as_json, code=2)


def calendar_date(text: str | None, as_json: bool) -> None:
    """A real day written YYYY-MM-DD (2026-13-45 is refused, not stored)."""
    if text is None:
        return
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        dt.date.fromisoformat(text)
    except ValueError:
        fail(f"date must be a day written YYYY-MM-DD, not {text!r}", as_json, code=2)


def split_ratio(text: str, as_json: bool) -> None:
    from datasets.splits import parse_ratio

    try:
        parse_ratio(text)
    except ValueError as err:
        fail(str(err), as_json, code=2)


def monitor_window(
    settings: Settings, kind: str | None, window: str | None, since: str | None, until: str | None, as_json: bool
) -> None:
    from monitoring.check import MonitorError, kinds_to_check, window_of

    try:
        window_of(settings, window, since, until)
        if kind is not None:
            kinds_to_check(settings, kind)
    except MonitorError as err:
        fail(str(err), as_json, code=2)
