"""What runs an exported file: ONNX Runtime or OpenVINO, behind one call (a float32 (N, C, H, W) batch -> logits).

Both were measured on the same files (docs/measurements.md#export-engines): which is faster depends on the network,
the precision and the CPU, so an export measures every engine installed here and keeps the faster one.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

ENGINES = ("onnxruntime", "openvino")


class EngineError(RuntimeError):
    """An engine that is not installed, or a file it cannot run; the message says which."""


class Engine(Protocol):
    name: str
    device: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else what the platform says) and its core count."""
    name = ""
    try:
        with open("/proc/cpuinfo") as fh:
            name = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    return f"{name} ({os.cpu_count()} cores)"


def cuda_available() -> bool:
    """ONNX Runtime was built with CUDA and a GPU answers (the onnxruntime-gpu package on a GPU machine)."""
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int = 0, cuda: bool | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initialisers say nothing to a user
        cuda = cuda_available() if cuda is None else cuda
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own untyped errors for a bad file
            raise EngineError(f"onnxruntime cannot load {path.name}: {err}") from None
        self._input = self._session.get_inputs()[0].name
        self.device = gpu_name() if "CUDAExecutionProvider" in self._session.get_providers() else cpu_name()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]  # thread-safe: one session serves every thread


class OpenVinoEngine:
    name = "openvino"

    def __init__(self, path: Path, threads: int = 0) -> None:
        import openvino

        config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        try:
            self._compiled = openvino.Core().compile_model(str(path), "CPU", config)
        except Exception as err:
            raise EngineError(f"openvino cannot load {path.name}: {err}") from None
        self._local = threading.local()  # an infer request is not thread-safe: one per calling thread
        self.device = cpu_name()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return np.array(request.infer({0: batch})[0])  # a copy: the request reuses its output buffer


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CUDA GPU"


def installed() -> list[str]:
    """The engines importable here, in ENGINES order."""
    return [name for name in ENGINES if importlib.util.find_spec(name) is not None]


def open_engine(name: str, path: Path, threads: int = 0) -> Engine:
    if name not in installed():
        raise EngineError(f"engine {name!r} is not installed here ({', '.join(installed()) or 'none'} is)")
    if name == "openvino":
        return OpenVinoEngine(path, threads)
    return OnnxRuntimeEngine(path, threads)


def latency(run: Callable[[np.ndarray], object], shape: tuple[int, int, int], budget_s: float = 2.0) -> dict:
    """Batch-1 median latency (ms) and batch-32 throughput (images/s) of ``run``, after a warm-up; each measured
    for about ``budget_s`` / 2 (at least 5 and 3 calls)."""
    rng = np.random.default_rng(0)
    one = rng.standard_normal((1, *shape), dtype=np.float32)
    many = rng.standard_normal((32, *shape), dtype=np.float32)

    def timed(batch: np.ndarray, least: int) -> list[float]:
        run(batch)  # warm-up: first calls allocate
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < least or time.perf_counter() - start < budget_s / 2:
            t0 = time.perf_counter()
            run(batch)
            times.append(time.perf_counter() - t0)
            if len(times) >= 200:
                break
        return times

    batch1_ms = statistics.median(timed(one, 5)) * 1000
    batch32_s = statistics.median(timed(many, 3))
    return {"batch1_ms": round(batch1_ms, 3), "batch32_images_per_s": round(32 / batch32_s, 1)}
