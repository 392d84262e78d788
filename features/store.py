"""Opening the Feast repo of an AOI_HOME, applying the definitions, materialising, and online lookups.

The repo lives in ``AOI_HOME/feast``: ``feature_store.yaml`` (written from settings, so the ``feast`` CLI works
there too), the registry, the SQLite online store, and ``data/`` with the parquet sources. ``AOI_FEAST_ONLINE``
set to ``redis://[user:password@]host:port[/db]`` (``rediss://`` for TLS) moves the online store to Redis; nothing
else changes. The Redis password is passed to Feast in memory and never written to feature_store.yaml.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from aoi.settings import Settings, mask_password


class FeatureStoreError(RuntimeError):
    """The feature repo cannot be opened or read: a bad AOI_FEAST_ONLINE, nothing applied yet ..."""


def repo_dir(settings: Settings) -> Path:
    return settings.home / "feast"


def data_dir(settings: Settings) -> Path:
    return repo_dir(settings) / "data"


PASSWORD_PLACEHOLDER = "${AOI_FEAST_REDIS_PASSWORD}"  # what feature_store.yaml holds instead of the password


def online_store_config(settings: Settings, secrets: bool = True) -> dict:
    """Feast's online_store for AOI_FEAST_ONLINE: ``redis://[user:password@]host[:port][/db]``, or ``rediss://``
    for TLS. User and password (percent-decoded) and TLS are passed on to Feast's connection string; with
    ``secrets=False`` the password is replaced by ``${AOI_FEAST_REDIS_PASSWORD}`` (for files a person may read)."""
    url = settings.feast_online
    if not url:
        return {"type": "sqlite", "path": str(repo_dir(settings) / "online.db")}
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError as err:
        raise FeatureStoreError(f"AOI_FEAST_ONLINE={mask_password(url)!r}: {err}") from None
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise FeatureStoreError(
            f"AOI_FEAST_ONLINE={mask_password(url)!r}: expected redis://[user:password@]host:port[/db] "
            "(rediss:// for TLS)"
        )
    connection = f"{parsed.hostname}:{port or 6379}"
    db = parsed.path.strip("/")
    if db:
        if not db.isdigit():
            raise FeatureStoreError(f"AOI_FEAST_ONLINE={mask_password(url)!r}: the database after / must be a number")
        connection += f",db={db}"
    if parsed.scheme == "rediss":
        connection += ",ssl=true"
    # Feast splits its connection string on commas and JSON-decodes each value: values go in as JSON strings
    # (so a password like 123 or true stays a string); a comma cannot be carried at all.
    for key, value in (("username", parsed.username), ("password", parsed.password)):
        if value:
            value = unquote(value)
            if "," in value:
                raise FeatureStoreError(
                    f"AOI_FEAST_ONLINE: the Redis {key} holds a comma, which Feast's connection "
                    "string cannot carry; choose one without"
                )
            if key == "password" and not secrets:
                connection += f",password={PASSWORD_PLACEHOLDER}"
            else:
                connection += f",{key}={json.dumps(value)}"
    return {"type": "redis", "connection_string": connection}


def repo_config(settings: Settings, secrets: bool = True) -> dict:
    """The content of feature_store.yaml for this AOI_HOME (``secrets=False``: the Redis password left out)."""
    from features.definitions import PROJECT

    return {
        "project": PROJECT,
        "provider": "local",
        "registry": str(repo_dir(settings) / "registry.db"),
        "online_store": online_store_config(settings, secrets),
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }


DEFINITIONS_MODULE = "aoi_definitions.py"  # not features.py: the repo folder is on sys.path when feast imports it


def definitions_module(settings: Settings) -> str:
    """The repo's Python file, for the ``feast`` CLI: Feast imports every .py of the repo folder and registers the
    objects it finds at module level. The definitions stay in the project's features/definitions.py; this file
    binds them to this AOI_HOME's data folder, so ``feast plan`` in the folder sees what ``aoi`` applied."""
    return (
        '"""The feature definitions of this AOI_HOME, for the feast CLI in this folder (feast plan, feast apply).\n\n'
        "Written by aoi from features/definitions.py of the aoi project (which must be importable: installed, or on\n"
        'PYTHONPATH); edits are overwritten."""\n\n'
        "from pathlib import Path\n\n"
        "from features.definitions import project, repo_objects\n"
        "from features.store import with_materialized_spans\n\n"
        f"REPO = Path({str(repo_dir(settings))!r})\n\n"
        "# Feast registers what it finds at module level: the project, every entity, view and feature service.\n"
        "globals().update({o.name: o for o in with_materialized_spans(REPO, repo_objects(REPO / 'data'))})\n"
    )


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def open_store(settings: Settings):
    """The FeatureStore of this AOI_HOME (its folder and feature_store.yaml are made on first use).

    The store is configured in memory, with the Redis password; feature_store.yaml (for the ``feast`` CLI) holds
    ``${AOI_FEAST_REDIS_PASSWORD}`` in its place, which Feast expands from the environment when it reads the file.
    """
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    repo = repo_dir(settings)
    data_dir(settings).mkdir(parents=True, exist_ok=True)
    config = repo / "feature_store.yaml"
    text = (
        "# Written by aoi from settings (AOI_HOME, AOI_FEAST_ONLINE); edits are overwritten. A Redis password is\n"
        "# not written here: export AOI_FEAST_REDIS_PASSWORD to use the feast CLI in this folder.\n"
        + yaml.safe_dump(repo_config(settings, secrets=False), sort_keys=False)
    )
    _write_if_changed(config, text)
    _write_if_changed(repo / DEFINITIONS_MODULE, definitions_module(settings))
    repo_config_object = RepoConfig(**repo_config(settings))
    repo_config_object.repo_path = repo
    return FeatureStore(repo_path=str(repo), config=repo_config_object)


def write_parquet(frame, path: Path) -> None:
    """Replace a source file whole: Feast and readers see the old table or the new one, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.tmp")
    frame.to_parquet(partial, index=False)
    partial.replace(path)


def repo_contents(objects: list):
    """Feast's RepoContents of ``objects``: what ``feast plan`` and ``feast apply`` collect from the repo's files."""
    from feast import Entity, FeatureService, FeatureView
    from feast.repo_contents import RepoContents

    from features.definitions import project

    views = [o for o in objects if isinstance(o, FeatureView)]
    return RepoContents(
        projects=[project],
        data_sources=[v.batch_source for v in views],
        feature_views=views,
        on_demand_feature_views=[],
        stream_feature_views=[],
        label_views=[],
        entities=[o for o in objects if isinstance(o, Entity)],
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        permissions=[],
    )


def apply(settings: Settings, store=None) -> list[str]:
    """Register the definitions the way ``feast apply`` in the repo folder does (the same plan and diff, the
    infrastructure recorded in the registry, an object no longer defined removed), so that ``feast plan`` there
    finds nothing to change afterwards. Returns the names of what is registered."""
    from feast.repo_operations import apply_total_with_repo_instance

    from features.definitions import PROJECT, repo_objects

    store = store or open_store(settings)
    objects = repo_objects(data_dir(settings))
    with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its plan: `feast plan` in the folder shows it
        apply_total_with_repo_instance(
            store, PROJECT, store.registry, repo_contents(objects), skip_source_validation=True
        )
    return [o.name for o in objects]


def with_materialized_spans(repo: Path, objects: list) -> list:
    """``objects`` with each view's materialised time spans as the repo's registry records them.

    Feast's plan compares a view's materialisation bookkeeping too, so a view defined afresh differs from the same
    view once materialised, and ``feast plan`` would list every materialised view as updated with no field changed
    (``feast apply`` keeps the spans). The repo's definitions module carries them, so plan compares definitions."""
    from feast import FeatureStore, FeatureView

    if not (repo / "registry.db").exists():
        return objects
    registered = {v.name: v for v in FeatureStore(repo_path=str(repo)).list_feature_views()}
    for view in objects:
        if isinstance(view, FeatureView) and view.name in registered:
            view.materialization_intervals = list(registered[view.name].materialization_intervals)
    return objects


def materialized_views(settings: Settings) -> list[str]:
    """The views whose parquet source exists (camera parameters only once a CSV was imported)."""
    from feast import FeatureView

    from features.definitions import repo_objects

    return [
        o.name
        for o in repo_objects(data_dir(settings))
        if isinstance(o, FeatureView) and Path(o.batch_source.path).exists()
    ]


def materialize(settings: Settings, views: list[str], store=None, end: datetime | None = None) -> dict:
    """Load the latest rows of ``views`` into the online store, from their earliest row up to ``end`` (now)."""
    import pandas as pd

    store = store or open_store(settings)
    end = end or datetime.now(UTC)
    loaded = {}
    for name in views:
        view = store.get_feature_view(name)
        frame = pd.read_parquet(view.batch_source.path, columns=[view.batch_source.timestamp_field])
        if frame.empty:
            loaded[name] = 0
            continue
        # The first materialize_incremental would start at end - ttl and skip older rows: load the whole span.
        start = pd.Timestamp(frame[view.batch_source.timestamp_field].min()).to_pydatetime()
        with contextlib.redirect_stdout(sys.stderr):  # Feast prints its progress; stdout is for --json
            store.materialize(start, end, feature_views=[name])
        loaded[name] = len(frame)
    return loaded


def online_row(store, view: str, entity: dict, names: list[str] | None = None) -> dict | None:
    """The online features of ``view`` for one entity, read from the view itself: for looking at a view that no
    feature service serves (tone statistics); the pipeline reads through its versioned services (service_row).
    None when the store has no row for it (Feast answers an unknown entity with None values, not an error)."""
    names = names or [f.name for f in store.get_feature_view(view).features]
    row = store.get_online_features(features=[f"{view}:{n}" for n in names], entity_rows=[entity]).to_dict()
    values = {n: row[n][0] for n in names}
    return None if all(v is None for v in values.values()) else {**entity, **values}


def _service(store, name: str):
    # The registry is read once per cache period (Feast's registry cache), not per request: on a hot path
    # reading it costs more than the lookup itself.
    return store.get_feature_service(name, allow_cache=True)


def _fields_of(frame_or_row: dict, view: str) -> dict:
    """The ``view``'s fields of a service's answer, by their own names (services answer ``view__field`` names:
    two views of a service may share a field name, like the gains of camera parameters and calibration)."""
    prefix = f"{view}__"
    return {k.removeprefix(prefix): v for k, v in frame_or_row.items() if k.startswith(prefix)}


def service_row(store, service: str, view: str, entity: dict) -> dict | None:
    """One entity's online features of ``view`` read through the versioned feature ``service``; None when the
    store has no row of that view for it."""
    row = store.get_online_features(
        features=_service(store, service), entity_rows=[entity], full_feature_names=True
    ).to_dict()
    values = {k: v[0] for k, v in _fields_of(row, view).items()}
    return None if all(v is None for v in values.values()) else {**entity, **values}


def camera_params_online(store, machine_id: str, part_no: str) -> dict | None:
    """The camera parameters in force for a machine and part (serving_v1); None for an unknown pair."""
    from features.definitions import CAMERA_PARAMS_SERVICE

    entity = {"machine_id": machine_id, "part_no": part_no}
    return service_row(store, CAMERA_PARAMS_SERVICE, "camera_params", entity)


def historical(store, service: str, view: str, rows: list[dict]):
    """Point-in-time features of ``view`` through the feature ``service`` for entity rows (join keys plus
    ``at``), in the rows' order; NaN where nothing was in force. The file offline store drops rows without a
    match and reorders the rest: rows carry a key."""
    import pandas as pd

    entity = pd.DataFrame(rows).rename(columns={"at": "event_timestamp"})
    entity["row"] = range(len(entity))
    entity["event_timestamp"] = pd.to_datetime(entity["event_timestamp"], utc=True)
    found = store.get_historical_features(
        entity_df=entity, features=_service(store, service), full_feature_names=True
    ).to_df()
    fields = _fields_of({c: c for c in found.columns}, view)
    found = found[["row", *fields.values()]].rename(columns={v: k for k, v in fields.items()})
    return entity[["row"]].merge(found, on="row", how="left").drop(columns="row")


def camera_params_at(store, rows: list[dict]):
    """Point-in-time camera parameters for (machine_id, part_no, at) rows, in their order; NaN where none."""
    from features.definitions import CAMERA_PARAMS_SERVICE

    return historical(store, CAMERA_PARAMS_SERVICE, "camera_params", rows)
