"""The demo's serving stage on the exports: each production model exported (fp32, then INT8) through the parity
gate before the service starts, and which runtime then answered each kind (the service's ``GET /model``).

A refused export (an INT8 file that disagrees with PyTorch beyond the gate) is a normal outcome, reported with its
figures; an export that cannot be made at all is reported too, and PyTorch answers for that kind. Neither stops
the demo: the service chooses its runtime itself (``AOI_SERVING__RUNTIME``, default ``auto``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx

from aoi.settings import Settings

PRECISIONS = (("fp32", False), ("int8", True))


def export_production(settings: Settings, versions: dict[str, str]) -> dict:
    """kind -> its production version's exports: per precision accepted or refused with the parity and latency
    figures, or the error that stopped it; and the seconds the exports took in all."""
    from export.exports import export_model

    started = time.perf_counter()
    out: dict = {"kinds": {}}
    for kind, version in versions.items():
        made: dict = {"model_version": version}
        for precision, int8 in PRECISIONS:
            began = time.perf_counter()
            try:
                made[precision] = brief(export_model(settings, version, "onnx", int8))
            except Exception as err:  # ExportError, EngineError, ...; torch.onnx, onnx and the engines raise their own
                # An export that cannot be made leaves PyTorch answering: reported, never the demo's failure.
                made[precision] = failed(err)
            made[precision]["seconds"] = round(time.perf_counter() - began, 1)
        out["kinds"][kind] = made
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def failed(err: Exception) -> dict:
    return {"accepted": False, "error": f"{type(err).__name__}: {err}"[:500]}


def brief(result: dict) -> dict:
    """What the demo shows of one ``aoi export --json`` result."""
    parity, latency = result["parity"], result["latency"]
    return {
        "accepted": result["accepted"],
        "reason": result["reason"],
        "engine": result["engine"],
        "top1_agreement": parity["top1_agreement"],
        "blind_accuracy_torch": parity["blind_accuracy_torch"],
        "blind_accuracy_export": parity["blind_accuracy_export"],
        "blind_images": parity["images"],
        "device": latency["device"],
        "batch1_ms": latency["batch1_ms"],
        "batch32_images_per_s": latency["batch32_images_per_s"],
        "torch_batch1_ms": latency["torch_batch1_ms"],
        "torch_batch32_images_per_s": latency["torch_batch32_images_per_s"],
    }


def client(settings: Settings, url: str, timeout_s: float = 30.0) -> httpx.Client:
    """An HTTP client of the running service, with its API key when one is set (never printed)."""
    token = settings.api_key.get_secret_value() if settings.api_key else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=timeout_s)


@contextlib.contextmanager
def connected(settings: Settings, service: str | httpx.Client) -> Iterator[httpx.Client]:
    """``service`` as a client: a URL is opened (and closed after), a client (a test's) is used as it is."""
    if isinstance(service, httpx.Client):
        yield service
        return
    with client(settings, service) as http:
        yield http


def answering(settings: Settings, service: str | httpx.Client) -> dict[str, dict]:
    """kind -> the version answering, its runtime and why (the service's own word: ``GET /model``)."""
    with connected(settings, service) as http:
        response = http.get("/model")
    response.raise_for_status()
    return {
        kind: {"model_version": m["version"], "runtime": m["runtime"], "runtime_reason": m["runtime_reason"]}
        for kind, m in response.json()["models"].items()
    }
