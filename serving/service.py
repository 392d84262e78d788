"""The classification service line software calls for every image (BentoML 1.4).

``POST /classify`` takes one image and answers with fine and coarse label, confidence, top-3, Unknown, route,
rule, model version and tone; ``GET /model`` says which versions answer. The model call is a batchable method
per kind, so concurrent requests share one forward pass (adaptive batching). Answers go to the prediction log
off the request path; a new production model is swapped in without a restart (``serving/models.py``).

Run it with ``aoi serve`` or ``bentoml serve serving.service:Classifier``; settings come from ``AOI_*``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Literal

import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException, InvalidArgument
from fastapi import FastAPI
from PIL import Image
from pydantic import Field
from starlette.responses import JSONResponse

from aoi.metrics import BadImage, measure
from aoi.settings import Settings, get_settings
from serving.answer import Answer, decide, log_row
from serving.guard import Guard
from serving.models import NoProductionModel, ProductionModels, Reloader
from serving.predlog import PredictionLog
from serving.rules import load_rules
from training.preprocess import preprocess

log = logging.getLogger("aoi.serving")
_BATCH = Settings().serving  # the batcher is configured when the class is defined: read the environment only
_CONNECTION_RETRIES = 4

info = FastAPI(title="AOI classifier: information routes")


@info.get("/model", summary="The production model answering for each kind")
def model_info() -> dict:
    return bentoml.get_current_service().describe()


@bentoml.service(name="aoi-classifier", workers=1, traffic={"timeout": 60})
@bentoml.asgi_app(info, path="/")
class Classifier:
    """Classifies AOI (gray) and VRS (colour) defect images with the production model of each kind."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        if self.settings.api_key:
            # BentoML's in-process batch calls pass the Guard too: give its client the same key.
            os.environ["BENTO_CLOUD_API_KEY"] = self.settings.api_key.get_secret_value()
        self.rules = load_rules(self.settings.serving.rules)
        self.models = ProductionModels(self.settings)
        self.models.refresh()
        self.reloader = Reloader(self.models, self.settings.serving.reload_poll_s)
        self.reloader.start()
        self.log = PredictionLog(self.settings).start()
        self.answered = 0
        self.batch_retries = 0

    def __is_ready__(self) -> bool:
        """/readyz: every production model of the catalog is loaded (503 before the first promotion)."""
        return bool(self.models.ready)

    @bentoml.on_shutdown
    def close(self) -> None:
        self.reloader.stop()
        spilled = self.log.close()
        if spilled:
            log.error("unlogged predictions kept in %s", spilled)

    def describe(self) -> dict:
        return {"models": {kind: self.models.get(kind).describe() for kind in self.models.ready},
                "rules": self.rules.model_dump(mode="json"), "swaps": self.models.swaps,
                "reload_error": self.reloader.last_error, "answered": self.answered,
                "prediction_log": {"written": self.log.written, "pending": self.log.pending,
                                   "failed_writes": self.log.failed_writes, "last_error": self.log.last_error},
                "batching": self.settings.serving.batching, "batch_retries": self.batch_retries}  # fmt: skip

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
        batch = preprocess(data, deployed.prep).unsqueeze(0).numpy()
        deployed, probabilities = await self._forward(kind, deployed, batch)
        answer = decide(deployed, probabilities, self.rules, request_id=uuid.uuid4().hex, metrics=metrics,
                        machine_id=machine_id, part_no=part_no, upstream_code=upstream_code)  # fmt: skip
        self.log.put(log_row(answer, metrics, hashlib.sha256(data).hexdigest(), (time.perf_counter() - started) * 1e3))
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

    async def _forward(self, kind: str, deployed, batch: np.ndarray):
        """(the model version that ran, its probabilities) for one preprocessed image."""
        if self.settings.serving.batching:
            method = self.to_async.forward_gray if kind == "gray" else self.to_async.forward_color
            for attempt in range(_CONNECTION_RETRIES + 1):
                try:
                    out = (await method(batch))[0]
                    ran = self.models.by_version(out["version"])
                    if ran is not None:
                        return ran, np.asarray(out["probabilities"], dtype=np.float32)
                    break  # two swaps during one request: answer with the version it was preprocessed for
                except BentoMLException as err:
                    # A batch mixing input sizes during a swap, or the batcher over its deadline: answer alone.
                    log.warning("batched %s forward failed (%s); answering unbatched", kind, err)
                    break
                except Exception as err:
                    # BentoML 1.4's in-process client sometimes drops a finished call under concurrency
                    # ("Server disconnected"); the forward pass is pure, so asking again is safe.
                    if attempt == _CONNECTION_RETRIES or "aiohttp" not in type(err).__module__:
                        raise
                    self.batch_retries += 1
        return deployed, (await asyncio.to_thread(deployed.probabilities, batch))[0]

    def _forward_batch(self, kind: str, batch: np.ndarray) -> list[dict]:
        if batch.ndim != 4 or batch.dtype != np.float32:
            raise InvalidArgument(f"expected a (N, C, H, W) float32 batch, got {batch.dtype} {batch.shape}")
        try:
            deployed = self.models.for_batch(kind, batch.shape)
        except (NoProductionModel, ValueError) as err:
            raise InvalidArgument(str(err)) from None
        return [{"version": deployed.version, "probabilities": p.tolist()} for p in deployed.probabilities(batch)]

    @bentoml.api(batchable=True, max_batch_size=_BATCH.max_batch_size, max_latency_ms=_BATCH.max_latency_ms)
    def forward_gray(self, batch: np.ndarray) -> list[dict]:
        """Internal: one forward pass of the gray model over a batch of preprocessed images."""
        return self._forward_batch("gray", batch)

    @bentoml.api(batchable=True, max_batch_size=_BATCH.max_batch_size, max_latency_ms=_BATCH.max_latency_ms)
    def forward_color(self, batch: np.ndarray) -> list[dict]:
        """Internal: one forward pass of the colour model over a batch of preprocessed images."""
        return self._forward_batch("color", batch)


Classifier.add_asgi_middleware(Guard)
