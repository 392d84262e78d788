"""The classification service line software calls for every image (BentoML 1.4).

``POST /classify`` takes one image and answers with fine and coarse label, confidence, top-3, Unknown, route,
rule, model version and tone; ``GET /model`` says which versions answer. The model call is a batchable method
per kind, so concurrent requests share one forward pass (adaptive batching). Answers go to the prediction log
off the request path; a new production model is swapped in without a restart (``serving/models.py``).

Run it with ``aoi serve`` or ``bentoml serve serving.service:Classifier``; settings come from ``AOI_*``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import logging
import time
import uuid
from pathlib import Path
from typing import Annotated, Literal

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument
from bentoml.validators import DType
from fastapi import FastAPI, Query
from PIL import Image
from pydantic import Field
from starlette.responses import JSONResponse

from aoi.metrics import BadImage, measure
from aoi.settings import Settings, get_settings
from serving.answer import Answer, decide, log_row
from serving.guard import Guard
from serving.batching import Batcher
from serving.machine_params import MachineParams, NoCameraParams
from serving.models import KINDS, Deployed, NoProductionModel, ProductionModels, Reloader
from serving.predlog import NotLogged, PredictionLog
from serving.rules import load_rules
from training.preprocess import ToneCalibration, preprocess

log = logging.getLogger("aoi.serving")
_BATCH = Settings().serving  # the batcher is configured when the class is defined: read the environment only

# JSON carries the self-call's batch: without the dtype it would arrive as float64.
Batch = Annotated[np.ndarray, DType("float32")]

info = FastAPI(title="AOI classifier: information routes")


@info.get("/model", summary="The production model answering for each kind")
def model_info() -> dict:
    return bentoml.get_current_service().describe()


@info.get("/machine_params", summary="Auto VRS: the camera parameters of a machine for a part (Feast online store)",
          responses={404: {"description": "Unknown machine / part pair, or nothing imported yet"}})  # fmt: skip
def machine_params(
    machine_id: Annotated[str, Query(min_length=1, max_length=64, examples=["vrs-01"])],
    part_no: Annotated[str, Query(min_length=1, max_length=64, examples=["P-1001"])],
) -> dict:
    try:
        return bentoml.get_current_service().machine_params.lookup(machine_id, part_no)
    except NoCameraParams as err:
        return JSONResponse({"error": str(err)}, status_code=404)


def model_input(data: bytes, deployed: Deployed, calibration: ToneCalibration | None) -> np.ndarray:
    """The (1, C, H, W) batch of one image: the training preprocessing with the machine's calibration."""
    return preprocess(data, deployed.prep, calibration).unsqueeze(0).numpy()


@bentoml.service(name="aoi-classifier", workers=1, traffic={"timeout": 60})
@bentoml.asgi_app(info, path="/")
class Classifier:
    """Classifies AOI (gray) and VRS (colour) defect images with the production model of each kind."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.rules = load_rules(self.settings.serving.rules)
        self.models = ProductionModels(self.settings)
        self.models.refresh()
        self.reloader = Reloader(self.models, self.settings.serving.reload_poll_s)
        self.reloader.start()
        self.log = PredictionLog(self.settings).start()
        self.machine_params = MachineParams(self.settings)
        limits = self.settings.serving
        self.batchers = {kind: Batcher(functools.partial(self._forward_batch, kind), limits.max_batch_size,
                                       limits.max_latency_ms) for kind in KINDS}  # fmt: skip
        self.answered = 0

    def __is_ready__(self) -> bool:
        """/readyz: every production model of the catalog is loaded (503 before the first promotion)."""
        return bool(self.models.ready)

    @bentoml.on_shutdown
    def close(self) -> None:
        self.reloader.stop()
        for batcher in self.batchers.values():
            batcher.close()
        self.log.close()  # what the catalog does not take stays in the journal, written by the next start

    def describe(self) -> dict:
        return {"models": {kind: self.models.get(kind).describe() for kind in self.models.ready},
                "rules": self.rules.model_dump(mode="json"), "swaps": self.models.swaps,
                "reload_error": self.reloader.last_error, "answered": self.answered,
                "prediction_log": self.log.describe(),
                "batching": {"on": self.settings.serving.batching, **{kind: {"batches": b.batches, "mean_batch_size": b.mean_batch_size}
                                                                     for kind, b in self.batchers.items()}}}  # fmt: skip

    @bentoml.api(route="/classify")
    async def classify(
        self,
        image: Annotated[Path, Field(description="The image file (PNG, JPEG, BMP ...), gray AOI or colour VRS")],
        kind: Annotated[Literal["gray", "color"], Field(description="Which model: gray (AOI) or color (VRS)")] = "gray",
        machine_id: Annotated[str | None, Field(max_length=64, description="AOI/VRS machine", examples=["vrs-01"])] = None,
        part_no: Annotated[str | None, Field(max_length=64, description="Board part number", examples=["P-1001"])] = None,
        upstream_code: Annotated[str | None, Field(max_length=64, description="The AOI's defect code", examples=["SHORT"])] = None,
    ) -> Answer:
        started = time.perf_counter()
        try:
            deployed = self.models.get(kind)
        except NoProductionModel as err:
            return JSONResponse({"error": str(err)}, status_code=503)
        data = image.read_bytes()
        refusal = self._refuse_image(data)
        if refusal is not None:
            return refusal
        try:
            metrics = measure(data, max_pixels=self.settings.serving.max_pixels,
                              allowed_modes=self.settings.ingest.allowed_modes, min_side=self.settings.metrics_min_side)  # fmt: skip
        except BadImage as err:  # truncated data, an unsupported mode ...
            return JSONResponse({"error": str(err)}, status_code=415)
        calibration = await asyncio.to_thread(self.machine_params.calibration, machine_id) if machine_id else None
        batch = model_input(data, deployed, calibration)
        deployed, probabilities = await self._forward(kind, deployed, batch)
        answer = decide(deployed, probabilities, self.rules, request_id=uuid.uuid4().hex, metrics=metrics,
                        machine_id=machine_id, part_no=part_no, upstream_code=upstream_code,
                        calibrated=calibration is not None)  # fmt: skip
        row = log_row(answer, metrics, hashlib.sha256(data).hexdigest(), (time.perf_counter() - started) * 1e3)
        try:  # journaled before it is answered: an answer given is an answer logged, whatever happens next
            if self.log.blocking:  # an fsync per answer: not on the event loop
                await asyncio.to_thread(self.log.put, row)
            else:
                self.log.put(row)
        except NotLogged as err:
            return JSONResponse({"error": f"the answer could not be logged, so it is not given: {err}"},
                                status_code=503, headers={"Retry-After": "5"})  # fmt: skip
        self.answered += 1
        return answer

    def _refuse_image(self, data: bytes) -> JSONResponse | None:
        """415 for what is not an image at all, 413 for too many pixels (read from the header, nothing decoded)."""
        limit = self.settings.serving.max_pixels
        try:
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
        except Image.DecompressionBombError:
            return JSONResponse({"error": f"image has more pixels than the limit of {limit:,}"}, status_code=413)
        except Exception:
            return JSONResponse({"error": "not an image: the upload is no image format this service reads"}, status_code=415)
        if width * height > limit:
            return JSONResponse({"error": f"image of {width}x{height} = {width * height:,} pixels is over the limit of "
                                          f"{limit:,} (AOI_SERVING__MAX_PIXELS)"}, status_code=413)  # fmt: skip
        return None

    async def _forward(self, kind: str, deployed: Deployed, batch: np.ndarray) -> tuple[Deployed, np.ndarray]:
        """(the model version that ran, its probabilities) for one preprocessed image."""
        if self.settings.serving.batching:
            try:
                return (await self.batchers[kind](batch))[0]
            except (InvalidArgument, ValueError) as err:
                # A batch mixing two input sizes during a swap: this image is answered alone.
                log.warning("batched %s forward failed (%s); answering unbatched", kind, err)
        return deployed, (await asyncio.to_thread(deployed.probabilities, batch))[0]

    def _forward_batch(self, kind: str, batch: np.ndarray) -> list[tuple[Deployed, np.ndarray]]:
        """The batchable model call: one forward pass, (version that ran, probabilities) per image."""
        if batch.ndim != 4 or batch.dtype != np.float32:
            raise InvalidArgument(f"expected a (N, C, H, W) float32 batch, got {batch.dtype} {batch.shape}")
        try:
            deployed = self.models.for_batch(kind, batch.shape)
        except (NoProductionModel, ValueError) as err:
            raise InvalidArgument(str(err)) from None
        return [(deployed, p) for p in deployed.probabilities(batch)]

    @staticmethod
    def _as_json(outputs: list[tuple[Deployed, np.ndarray]]) -> list[dict]:
        return [{"version": deployed.version, "probabilities": p.tolist()} for deployed, p in outputs]

    @bentoml.api(batchable=True, max_batch_size=_BATCH.max_batch_size, max_latency_ms=_BATCH.max_latency_ms)
    def forward_gray(self, batch: Batch) -> list[dict]:
        """Internal: one forward pass of the gray model over a batch of preprocessed images."""
        return self._as_json(self._forward_batch("gray", batch))

    @bentoml.api(batchable=True, max_batch_size=_BATCH.max_batch_size, max_latency_ms=_BATCH.max_latency_ms)
    def forward_color(self, batch: Batch) -> list[dict]:
        """Internal: one forward pass of the colour model over a batch of preprocessed images."""
        return self._as_json(self._forward_batch("color", batch))


Classifier.add_asgi_middleware(Guard)
