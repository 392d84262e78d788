"""The classification service line software calls for every image (BentoML 1.4).

``POST /classify`` takes one image and answers with fine and coarse label, confidence, top-3, Unknown, route,
rule, model version and tone; ``GET /model`` says which versions answer. Concurrent requests share one forward
pass per kind (adaptive batching, ``serving/batching.py``); decoding, measuring and preprocessing run in worker
threads, never on the event loop. Answers go to the prediction log off the request path; a new production model
is swapped in without a restart (``serving/models.py``). ``serving/guard.py`` checks every request first.

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
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument
from fastapi import FastAPI, Query
from PIL import Image
from pydantic import Field
from starlette.responses import JSONResponse

from aoi.catalog import db
from aoi.image_metrics import BadImage, ImageMetrics, measure_decoded
from aoi.preprocess import ToneCalibration, preprocess, to_tensor
from aoi.settings import Settings, get_settings
from serving.answer import Answer, decide, log_row
from serving.batching import Batcher
from serving.bento import PackedModels, production_models
from serving.feedback import Confirmation, FeedbackError, confirm
from serving.guard import Guard
from serving.keep import AnswerKeeper
from serving.machine_params import MachineParams, NoCameraParams
from serving.models import KINDS, Deployed, NoProductionModel, Reloader
from serving.predlog import NotLogged, PredictionLog
from serving.rules import load_rules
from serving.upload import TEXT_MAX, text_problem

log = logging.getLogger("aoi.serving")
RECENT_ANSWERS = 100_000  # kinds of the latest answers remembered for /feedback (a few MB)
# The mode each kind's model was trained on: a gray image sent as colour (or the reverse) is refused, not answered.
KIND_MODES = {"gray": "L", "color": "RGB"}
UNTRACED = r"/classify$"  # a regular expression searched in the request's URL (OpenTelemetry's exclude list)

info = FastAPI(title="AOI classifier: information routes")


class Prepared(NamedTuple):
    """An accepted upload, ready for the model."""

    data: bytes
    metrics: ImageMetrics
    deployed: Deployed  # the kind's production model when the image was preprocessed (its input size)
    batch: np.ndarray  # (1, C, H, W) float32
    calibration: ToneCalibration | None
    sha256: str


@info.get("/model", summary="The production model answering for each kind")
def model_info() -> dict:
    return bentoml.get_current_service().describe()


@info.get(
    "/machine_params",
    summary="Auto VRS: the camera parameters of a machine for a part (Feast online store)",
    responses={404: {"description": "Unknown machine / part pair, or nothing imported yet"}},
)
def machine_params(
    machine_id: Annotated[str, Query(min_length=1, max_length=64, examples=["vrs-01"])],
    part_no: Annotated[str, Query(min_length=1, max_length=64, examples=["P-1001"])],
) -> dict:
    try:
        return bentoml.get_current_service().machine_params.lookup(machine_id, part_no)
    except NoCameraParams as err:
        return JSONResponse({"error": str(err)}, status_code=404)


def model_input(
    data: bytes, deployed: Deployed, calibration: ToneCalibration | None, decoded: Image.Image | None = None
) -> np.ndarray:
    """The (1, C, H, W) batch of one image: the training preprocessing with the machine's calibration.
    ``decoded``: the same image already decoded whole (``measure_decoded``), which gives the same tensor."""
    if decoded is not None:
        return to_tensor(decoded, deployed.prep, calibration).unsqueeze(0).numpy()
    return preprocess(data, deployed.prep, calibration).unsqueeze(0).numpy()


# BentoML's metrics label requests by raw path (unbounded); serving/guard.py answers /metrics with bounded labels.
# BentoML's OpenTelemetry span per request cost /classify 1.2 CPU-ms (18% of its CPU under the GIL) with no
# exporter to send it to; the answer's request_id is the key line software and the prediction log share.
@bentoml.service(
    name="aoi-classifier",
    workers=1,
    traffic={"timeout": 60},
    metrics={"enabled": False},
    tracing={"excluded_urls": [UNTRACED]},
)
@bentoml.asgi_app(info, path="/")
class Classifier:
    """Classifies AOI (gray) and VRS (colour) defect images with the production model of each kind."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.rules = load_rules(self.settings.serving.rules)
        self.models = production_models(self.settings)
        self.models.refresh()
        self.reloader: Reloader | None = None
        if not isinstance(self.models, PackedModels):  # packed into the Bento: a new model is a new Bento
            self.reloader = Reloader(self.models, self.settings.serving.reload_poll_s)
            self.reloader.start()
        self.log = PredictionLog(self.settings).start()
        self.machine_params = MachineParams(self.settings)
        limits = self.settings.serving
        self.batchers = {
            kind: Batcher(functools.partial(self._forward_batch, kind), limits.max_batch_size, limits.max_latency_ms)
            for kind in KINDS
        }
        self.answered = 0
        self.keeper = AnswerKeeper(self.settings).start()
        # request id -> kind of the latest answers: a fresh answer, still in the log's journal, can be confirmed
        self.recent: OrderedDict[str, str] = OrderedDict()

    def __is_ready__(self) -> bool:
        """/readyz: every production model of the catalog is loaded (503 before the first promotion)."""
        return bool(self.models.ready)

    @bentoml.on_shutdown
    def close(self) -> None:
        if self.reloader is not None:
            self.reloader.stop()
        for batcher in self.batchers.values():
            batcher.close()
        self.log.close()  # what the catalog does not take stays in the journal, written by the next start
        self.keeper.close()  # writes what is queued

    def describe(self) -> dict:
        return {
            "models": {kind: self.models.get(kind).describe() for kind in self.models.ready},
            "rules": self.rules.model_dump(mode="json"),
            "swaps": self.models.swaps,
            "reload_error": self.reloader.last_error if self.reloader else None,
            "model_source": "catalog" if self.reloader else "bento",
            "answered": self.answered,
            "prediction_log": self.log.describe(),
            "kept_answers": self.keeper.describe(),
            "batching": {
                "on": self.settings.serving.batching,
                **{
                    kind: {"batches": b.batches, "mean_batch_size": b.mean_batch_size}
                    for kind, b in self.batchers.items()
                },
            },
        }

    @bentoml.api(route="/classify")
    async def classify(
        self,
        image: Annotated[
            Path,
            Field(
                description="The image file (PNG, JPEG or BMP; AOI_SERVING__IMAGE_FORMATS): gray (L) for kind "
                "gray, RGB for kind color"
            ),
        ],
        kind: Annotated[Literal["gray", "color"], Field(description="Which model: gray (AOI) or color (VRS)")] = "gray",
        machine_id: Annotated[
            str | None, Field(max_length=TEXT_MAX, description="AOI/VRS machine", examples=["vrs-01"])
        ] = None,
        part_no: Annotated[
            str | None, Field(max_length=TEXT_MAX, description="Board part number", examples=["P-1001"])
        ] = None,
        upstream_code: Annotated[
            str | None, Field(max_length=TEXT_MAX, description="The AOI's defect code", examples=["SHORT"])
        ] = None,
    ) -> Answer:
        started = time.perf_counter()
        for name, value in (("machine_id", machine_id), ("part_no", part_no), ("upstream_code", upstream_code)):
            problem = text_problem(name, value) if value is not None else None
            if problem:  # the guard refuses these before; a direct call is checked here too
                return JSONResponse({"error": problem}, status_code=400)
        # Reading, probing, measuring and preprocessing a large image takes a while: off the event loop, which
        # keeps answering, in one hand-over to a worker thread (each costs the loop's thread CPU).
        prepared = await asyncio.to_thread(self._prepare, image, kind, machine_id)
        if isinstance(prepared, JSONResponse):
            return prepared
        data, metrics, deployed, batch, calibration, digest = prepared
        deployed, probabilities = await self._forward(kind, deployed, batch)
        answer = decide(
            deployed,
            probabilities,
            self.rules,
            request_id=uuid.uuid4().hex,
            metrics=metrics,
            machine_id=machine_id,
            part_no=part_no,
            upstream_code=upstream_code,
            calibrated=calibration is not None,
        )
        row = log_row(answer, metrics, digest, (time.perf_counter() - started) * 1e3)
        try:  # journaled before it is answered: an answer given is an answer logged, whatever happens next
            if self.log.blocking:  # an fsync per answer: not on the event loop
                await asyncio.to_thread(self.log.put, row)
            else:
                self.log.put(row)
        except NotLogged as err:
            return JSONResponse(
                {"error": f"the answer could not be logged, so it is not given: {err}"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        self.answered += 1
        self._answered(answer, data, digest)
        return answer

    def _answered(self, answer: Answer, data: bytes, digest: str) -> None:
        """After an answer is logged: keep its image when doubtful or sampled (queued, never waited for), and
        remember its kind for a confirmation that may come before its prediction row reaches the catalog."""
        self.keeper.offer(answer, data, digest)
        self.recent[answer.request_id] = answer.kind
        if len(self.recent) > RECENT_ANSWERS:
            self.recent.popitem(last=False)

    @bentoml.api(route="/feedback")
    async def feedback(
        self,
        request_id: Annotated[str, Field(max_length=64, description="The answer's request_id (from /classify)")],
        label: Annotated[
            str,
            Field(
                max_length=64,
                description="The true fine class of the answer's kind, or NOT_DEFECT",
                examples=["SHORT"],
            ),
        ],
        by: Annotated[
            str, Field(max_length=128, description="Who found it: the VRS station or the operator", examples=["vrs-01"])
        ],
    ) -> dict:
        """Confirmed truth for one answer. Idempotent per request id: the same label again answers 200 with the
        same record; another label for a confirmed answer is 409 and changes nothing."""
        try:
            done = await asyncio.to_thread(self._confirm, request_id, label, by, self.recent.get(request_id))
        except FeedbackError as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
        if done.outcome == "conflict":
            return JSONResponse(
                {
                    "error": f"answer {done.request_id} is already confirmed as {done.label} (by {done.by}); "
                    "the first confirmation stands",
                    **done.as_dict(),
                },
                status_code=409,
            )
        return done.as_dict()

    def _confirm(self, request_id: str, label: str, by: str, kind: str | None) -> Confirmation:
        """In a worker thread: one short catalog transaction."""
        with db.session(self.settings.catalog_url) as session:
            return confirm(session, request_id, label, by, "api", kind=kind)

    def _prepare(self, image: Path, kind: str, machine_id: str | None) -> Prepared | JSONResponse:
        """The upload checked, measured and preprocessed for the kind's production model, or the response that
        refuses it: 415/413/422 for the image first, then 503 without a production model. In a worker thread."""
        data, metrics, decoded = self._examine(image, kind)
        if isinstance(metrics, JSONResponse):
            return metrics
        try:
            deployed = self.models.get(kind)
        except NoProductionModel as err:
            return JSONResponse({"error": str(err)}, status_code=503)
        batch, calibration, digest = self._model_input(data, deployed, machine_id, decoded)
        return Prepared(data, metrics, deployed, batch, calibration, digest)

    def _examine(self, image: Path, kind: str) -> tuple[bytes, ImageMetrics | JSONResponse, Image.Image | None]:
        """(bytes, tone metrics, the decoded image when the metrics decoded it whole) of the upload, or (bytes, the
        JSONResponse that refuses it, None). In a worker thread."""
        data = image.read_bytes()
        refusal = self._refuse_image(data, kind)
        if refusal is not None:
            return data, refusal, None
        try:
            metrics, decoded = measure_decoded(
                data,
                max_pixels=self.settings.serving.max_pixels,
                allowed_modes=(KIND_MODES[kind],),
                min_side=self.settings.metrics_min_side,
            )
        except BadImage as err:  # truncated data ...
            return data, JSONResponse({"error": str(err)}, status_code=415), None
        return data, metrics, decoded

    def _model_input(
        self, data: bytes, deployed: Deployed, machine_id: str | None, decoded: Image.Image | None = None
    ) -> tuple[np.ndarray, ToneCalibration | None, str]:
        """(the model's input batch, the machine's calibration or None, the image's SHA-256). In a worker thread.
        ``decoded``: the upload as the metrics decoded it whole, so it is not decoded twice (the same tensor)."""
        calibration = self.machine_params.calibration(machine_id) if machine_id else None
        batch = model_input(data, deployed, calibration, decoded)
        return batch, calibration, hashlib.sha256(data).hexdigest()

    def _refuse_image(self, data: bytes, kind: str) -> JSONResponse | None:
        """From the header only, nothing decoded: 415 for what is not an image of an accepted format, 413 for too
        many pixels, 422 for an image whose mode does not fit ``kind``."""
        limit, formats = self.settings.serving.max_pixels, self.settings.serving.image_formats
        try:
            # formats=: only the accepted decoders ever look at the bytes.
            with Image.open(io.BytesIO(data), formats=formats) as probe:
                width, height, mode = *probe.size, probe.mode
        except Image.DecompressionBombError:
            return JSONResponse({"error": f"image has more pixels than the limit of {limit:,}"}, status_code=413)
        except Exception:
            try:
                with Image.open(io.BytesIO(data)) as other:
                    found = f"a {other.format} image"
            except Exception:
                found = "no image format this service reads"
            return JSONResponse(
                {
                    "error": f"not an image this service accepts: the upload is {found}; send "
                    f"{', '.join(formats)} (AOI_SERVING__IMAGE_FORMATS)"
                },
                status_code=415,
            )
        if width * height > limit:
            return JSONResponse(
                {
                    "error": f"image of {width}x{height} = {width * height:,} pixels is over the limit of "
                    f"{limit:,} (AOI_SERVING__MAX_PIXELS)"
                },
                status_code=413,
            )
        expected = KIND_MODES[kind]
        if mode != expected:
            other = next((k for k, m in KIND_MODES.items() if m == mode), None)
            hint = f"send it as kind={other}" if other else f"the {kind} model takes {expected} images only"
            return JSONResponse({"error": f"a {mode} image sent as kind={kind}: {hint}"}, status_code=422)
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
        """The batched model call: one forward pass, (version that ran, probabilities) per image."""
        if batch.ndim != 4 or batch.dtype != np.float32:
            raise InvalidArgument(f"expected a (N, C, H, W) float32 batch, got {batch.dtype} {batch.shape}")
        try:
            deployed = self.models.for_batch(kind, batch.shape)
        except (NoProductionModel, ValueError) as err:
            raise InvalidArgument(str(err)) from None
        return [(deployed, p) for p in deployed.probabilities(batch)]


Classifier.add_asgi_middleware(Guard)
