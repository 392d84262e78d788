"""A self-contained Bento: the production models packed into it with what answering needs from the catalog.

``aoi bento build`` (``build``) stages a build folder: the service's code, as ``serving/bentofile.yaml`` includes
it, and ``bento_models/``: a manifest (per kind: version, architecture, taxonomy, preprocessing, Unknown threshold,
tone spec, the export that answers) and the files each production version answers with: its weights
(``answer_files``: Grad-CAM and the fallback run on PyTorch) and the accepted export that AOI_SERVING__RUNTIME picks
at build time (``pack_export``). ``bentoml build`` packs the folder. A service started from that Bento reads its
models from there (``PackedModels``): no model store, no catalog to answer (the prediction log goes to
``AOI_DB_URL``, by default a SQLite file in ``AOI_HOME``, created on first use). ``AOI_SERVING__MODEL_SOURCE=catalog``
keeps the hot reload from the catalog in a Bento too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aoi.preprocess import Preprocessing
from aoi.settings import Settings
from serving.models import KINDS, Deployed, ProductionModels, Runtime, load_deployed, production_versions
from training.taxonomy import Taxonomy
from validation.specs import Spec

log = logging.getLogger("aoi.serving")

CODE_ROOT = Path(__file__).resolve().parent.parent  # the repository, or a Bento's src/
PACKED = "bento_models"
MANIFEST = "manifest.json"
# What the Bento packs of the code: the packages the service imports (the bentofile's include picks the files).
PACKAGES = ("aoi", "ingest", "validation", "datasets", "features", "training", "evaluation", "export", "serving")
# The files of a model version's folder in the model store that answering needs (PyTorch's: Grad-CAM and the
# fallback). The export that answers is packed beside them (``pack_export``).
ANSWER_FILES = ("model.pt", "aoi.json")


class BentoError(RuntimeError):
    """The Bento cannot be built (no production model, a missing file, ``bentoml build`` failed)."""


def packed_dir(root: Path = CODE_ROOT) -> Path:
    return root / PACKED


def model_source(settings: Settings, root: Path = CODE_ROOT) -> str:
    """``bento`` or ``catalog``: the setting, ``auto`` resolved (bento where a packed manifest is beside the code)."""
    source = settings.serving.model_source
    if source == "auto":
        return "bento" if (packed_dir(root) / MANIFEST).is_file() else "catalog"
    return source


def answer_files(settings: Settings, version: str) -> list[Path]:
    """The files a model version needs to answer, in AOI_HOME's model store."""
    import bentoml

    from training.registry import model_row, model_store

    row = model_row(settings, version)
    folder = Path(bentoml.models.get(row.bento_tag, _model_store=model_store(settings)).path)
    files = sorted({p for pattern in ANSWER_FILES for p in folder.glob(pattern) if p.is_file()})
    missing = [name for name in ANSWER_FILES if "*" not in name and not (folder / name).is_file()]
    if missing:
        raise BentoError(f"model version {version} lacks {', '.join(missing)} in the model store ({folder})")
    return files


def pack_models(settings: Settings, folder: Path) -> dict:
    """Write ``folder/bento_models``: the production models' files and the manifest; returns the manifest."""
    versions = production_versions(settings)
    if not versions:
        raise BentoError("no production model in the catalog: promote one first (aoi promote), then build the Bento")
    target = packed_dir(folder)
    target.mkdir(parents=True, exist_ok=True)
    models = {}
    for kind in KINDS:
        version = versions.get(kind)
        if version is None:
            continue
        deployed = load_deployed(settings, version)  # threshold and tone spec resolved as the service resolves them
        kind_dir = target / kind
        kind_dir.mkdir()
        files = []
        for path in answer_files(settings, version):
            shutil.copy2(path, kind_dir / path.name)
            files.append(f"{kind}/{path.name}")
        meta = json.loads((kind_dir / "aoi.json").read_text())
        runtime = pack_export(settings, deployed, kind_dir)
        if runtime is not None:
            files.append(f"{kind}/{runtime['file']}")
        models[kind] = {
            "version": deployed.version,
            "kind": kind,
            "arch": meta["arch"],
            "taxonomy": deployed.taxonomy.as_dict(),
            "preprocessing": deployed.prep.as_dict(),
            "threshold": deployed.threshold,
            "tone_spec": deployed.tone_spec.model_dump(mode="json") if deployed.tone_spec else None,
            "runtime": runtime,
            "files": files,
        }
    manifest = {"models": models}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def pack_export(settings: Settings, deployed: Deployed, kind_dir: Path) -> dict | None:
    """Copy the export that answers for ``deployed`` (as AOI_SERVING__RUNTIME chose it) into ``kind_dir``; its
    manifest entry, or None when PyTorch answers."""
    if deployed.runtime is None:
        return None
    from export import exports

    figures = deployed.runtime.export
    row = next(
        (
            r
            for r in exports.exports_of(settings, [deployed.version]).get(deployed.version, [])
            if r.sha256 == figures["sha256"]
        ),
        None,
    )
    if row is None:
        raise BentoError(f"the export of {deployed.version} that answers is no longer in the catalog: export it again")
    source = exports.export_file(settings, row)
    name = f"export-{'int8' if row.int8 else 'fp32'}.{row.format}"
    shutil.copy2(source, kind_dir / name)
    return {
        "name": deployed.runtime.name,
        "engine": row.engine,
        "file": name,
        "export": figures,
        "why": deployed.runtime.why,
    }


def _packed_runtime(entry: dict, root: Path, threads: int) -> Runtime | None:
    """The packed export opened in its engine; None (PyTorch answers) when there is none or it cannot open."""
    packed = entry.get("runtime")
    if not packed:
        return None
    from export import engines

    try:
        engine = engines.open_engine(packed["engine"], packed_dir(root) / entry["kind"] / packed["file"], threads)
    except engines.EngineError as err:
        log.warning("packed export of %s not loaded, PyTorch answers: %s", entry["version"], err)
        return None
    return Runtime(packed["name"], engine, packed["export"], f"packed in the Bento: {packed['why']}")


def read_manifest(root: Path = CODE_ROOT) -> dict:
    return json.loads((packed_dir(root) / MANIFEST).read_text())


def load_packed(entry: dict, root: Path = CODE_ROOT, threads: int = 0, torch_only: bool = False) -> Deployed:
    """A packed model, the way ``load_deployed`` gives it from the catalog and the model store; on its packed export
    unless ``torch_only`` (AOI_SERVING__RUNTIME=torch: an operator's way back to PyTorch without a new Bento)."""
    from training.checkpoint import load_state
    from training.model import build_model

    taxonomy, prep = Taxonomy.from_dict(entry["taxonomy"]), Preprocessing(**entry["preprocessing"])
    model = build_model(entry["arch"], len(taxonomy.fine), prep.channels)
    model.load_state_dict(load_state(str(packed_dir(root) / entry["kind"] / "model.pt")))
    runtime = None if torch_only else _packed_runtime(entry, root, threads)
    return Deployed(
        version=entry["version"],
        kind=entry["kind"],
        model=model.eval(),
        taxonomy=taxonomy,
        prep=prep,
        threshold=float(entry["threshold"]),
        tone_spec=Spec.model_validate(entry["tone_spec"]) if entry["tone_spec"] else None,
        runtime=runtime,
        runtime_note="AOI_SERVING__RUNTIME=torch"
        if torch_only
        else "packed in the Bento: PyTorch answers (no export packed, or it could not be opened)",
    )


class PackedModels(ProductionModels):
    """The models packed into the Bento: loaded once, never swapped (a new model is a new Bento)."""

    def __init__(self, settings: Settings, root: Path = CODE_ROOT) -> None:
        super().__init__(settings)
        self._root = root

    def refresh(self) -> list[str]:
        with self._lock:
            if self._current:
                return []
            manifest = read_manifest(self._root)
            threads, torch_only = self._settings.export.threads, self._settings.serving.runtime == "torch"
            self._current = {
                kind: load_packed(entry, self._root, threads, torch_only) for kind, entry in manifest["models"].items()
            }
            self.swaps += len(self._current)
            for deployed in self._current.values():
                log.info("production %s model %s, packed in the Bento", deployed.kind, deployed.version)
            return [f"{kind}: - -> {d.version}" for kind, d in self._current.items()]


def production_models(settings: Settings) -> ProductionModels:
    """The models the service answers with, from the setting's source."""
    return PackedModels(settings) if model_source(settings) == "bento" else ProductionModels(settings)


def build(settings: Settings, version: str | None = None) -> dict:
    """Build the Bento with the production models packed; returns its tag, the models and the Bento's folder."""
    from training.registry import bentoml_env

    bentoml_env(settings)
    if version is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,63}", version):
        raise BentoError(f"a Bento version is 1 to 63 letters, digits, '_', '.' or '-', not {version!r}")
    with tempfile.TemporaryDirectory(prefix="aoi-bento-") as staging:
        context = Path(staging)
        manifest = pack_models(settings, context)
        for package in PACKAGES:
            shutil.copytree(
                CODE_ROOT / package, context / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        bentoml = str(Path(sys.executable).with_name("bentoml"))
        command = [bentoml, "build", "-f", str(context / "serving" / "bentofile.yaml"), "-o", "tag", str(context)]
        if version:
            command += ["--version", version]
        done = subprocess.run(command, cwd=context, env=os.environ.copy(), capture_output=True, text=True)
        if done.returncode != 0:
            raise BentoError(f"bentoml build failed: {(done.stderr or done.stdout).strip()[-800:]}")
    match = re.search(r"__tag__:(\S+)", done.stdout)
    if match is None:
        raise BentoError(f"bentoml build gave no tag: {done.stdout.strip()[-300:]}")
    tag = match[1]
    return {
        "tag": tag,
        "models": {kind: entry["version"] for kind, entry in manifest["models"].items()},
        "path": str(Path(os.environ["BENTOML_HOME"]) / "bentos" / tag.replace(":", "/")),
        "serve": f"bentoml serve {tag}",
    }
