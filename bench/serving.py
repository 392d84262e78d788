"""Serving throughput per runtime, measured in one run on this machine:

1. the forward-pass limit per runtime: in-process batched forward passes of the production model (no HTTP, no
   decoding) on PyTorch fp32, the ONNX fp32 export and the ONNX INT8 export (`aoi export`), each in the engine
   the export measured fastest;
2. `/classify` of the served process (adaptive batching on) at concurrency 1, 8 and 32 per runtime
   (AOI_SERVING__RUNTIME=torch, then onnx with the fp32 export only, then onnx with the INT8 export too):
   requests/s, p50, p99, CPU per request;
3. the naive server on PyTorch: the same service with batching off (one forward pass per request);
4. the cost of keeping answers (serving/keep.py): batched /classify at concurrency 32 with nothing kept
   (AOI_SERVING__KEEP_SHARE=0), the default share (0.02) and every answer kept (1.0, the worst case: as if every
   answer were doubtful), in alternating rounds, each round with images not sent before (so the store writes them).
5. with ``--profile``: where the server's CPU goes per request. Each step of the request path timed alone in this
   process (CPU-ms, one thread), and the served process sampled by py-spy while /classify runs at concurrency 32
   (``py-spy record --gil``: the thread holding the GIL, which one event loop and its worker threads share), its
   samples grouped by step and scaled to the server's measured CPU per request.

Goals: INT8 forward >= 2.5x PyTorch fp32; /classify at c=32 on the export >= 1.5x the PyTorch runtime's and >= 50%
of its own runtime's limit; batched PyTorch >= 2x naive; with every answer kept >= 0.9x the throughput with
none kept.
The model is the demo's gray architecture (resnet18, 64 px, 1 channel) with untrained weights: speed does not
depend on the weights, but an untrained network's near-tied logits make INT8's top-1 flip, so this bench relaxes
the parity gate for its own AOI_HOME (the gate is tested on trained models, tests/integration/test_export_real.py).
Its threshold is set near 0 so its answers are confident (route FINAL): the keep share alone
decides what is kept. Images are generated 64 px gray PNGs. Client and server share this machine's cores.

    .venv/bin/python bench/serving.py [--requests 600] [--keep-rounds 2] [--keeping-only] [--profile]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.catalog import db
from aoi.catalog.models import ModelVersion, TrainingRun
from aoi.preprocess import Preprocessing, preprocess
from aoi.settings import Settings
from serving import process
from serving.loadgen import run_load
from serving.models import load_deployed
from training.model import build_model
from training.registry import save_model
from training.taxonomy import Taxonomy

CONCURRENCY = (1, 8, 32)
ROOT = Path(__file__).resolve().parent.parent


def aoi(*args: str) -> dict:
    """``aoi ARGS --json`` in a child process with this bench's environment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args, "--json"], capture_output=True, text=True, check=False, env=env, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"aoi {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return json.loads(done.stdout)


PROFILE_S = 15  # seconds of py-spy sampling under load
# Steps of the request path, recognised in a py-spy stack by its innermost matching frame (first match wins there).
STEPS = [
    ("model forward", ("Deployed.probabilities", "probabilities (serving/models.py", "(torch/")),
    ("prediction log writer thread (catalog inserts)", ("PredictionLog._run", "PredictionLog._loop")),
    ("guard: strict multipart parse + re-encode", ("parse_form (serving/", "ClassifyForm.encode", "_read_body")),
    (
        "BentoML multipart parse + temp file",
        ("MultipartSerde", "Request.form", "FileSchema.decode", "NamedTemporaryFile", "TempfilePool", "multipart"),
    ),
    ("read upload + header probe", ("read_bytes", "_refuse_image")),
    ("decode + tone/quality metrics", ("measure (aoi/", "measure_decoded", "_measure (aoi/")),
    ("preprocess", ("preprocess (aoi/", "to_tensor", "model_input")),
    ("answer + log row", ("decide (serving/", "log_row", "Answer")),
    ("journal append", ("PredictionLog.put",)),
    ("response JSON", ("to_http_response", "serialize_model", "model_dump_json")),
    ("OpenTelemetry span", ("opentelemetry", "OpenTelemetry", "Tracer.")),
    ("access log", ("AccessLog", "Logger.", "StreamHandler")),
    ("guard: key, checks, metrics", ("serving/guard.py", "http_metrics", "prometheus")),
    ("batcher (CorkDispatcher)", ("serving/batching.py", "dispatcher")),
    ("classify (rest)", ("Classifier.",)),
    ("BentoML + Starlette app", ("_bentoml_impl", "_bentoml_sdk", "bentoml/_internal", "starlette", "anyio")),
    ("uvicorn + event loop", ("uvicorn", "Runner.run", "asyncio", "_worker", "Thread.run")),
]
IDLE = ("Condition.wait", "Event.wait", "Queue.get", "sleep")


def production_model(settings: Settings) -> str:
    """Register an untrained resnet18 (the demo's gray setting) as the production gray model, on a generated
    dataset version (its valid split calibrates INT8) and a generated blind set (parity is measured on it)."""
    taxonomy, prep = Taxonomy.load("gray"), Preprocessing(input_size=64, channels=1)
    folders = Path(tempfile.mkdtemp(prefix="aoi-bench-images-"))
    rng = np.random.default_rng(1)
    for part, per_class in (("train", 12), ("blind", 6)):
        for label in taxonomy.fine:
            (folders / part / label).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (64, 64), dtype=np.uint8)
                Image.fromarray(pixels, "L").save(folders / part / label / f"{i}.png")
    aoi("ingest", str(folders / "train"), "--source", "gray", "--no-progress")
    aoi("dataset", "build", "bench-v1", "--source", "gray", "--seed", "1", "--split", "6:6:0")
    aoi(
        "dataset",
        "blind",
        "bench-blind",
        "--folder",
        str(folders / "blind"),
        "--source",
        "gray",
        "--date",
        "2026-07-17",
    )
    model = build_model("resnet18", len(taxonomy.fine), prep.channels)
    tag = save_model(
        settings,
        kind="gray",
        version="gray-bench",
        state_dict=model.state_dict(),
        taxonomy=taxonomy.as_dict(),
        prep=prep.as_dict(),
        arch="resnet18",
        metrics={},
    )
    with db.session(settings.catalog_url) as s:
        run = TrainingRun(kind="gray", dataset="bench-v1", status="succeeded", arch="resnet18")
        s.add(run)
        s.flush()
        s.add(
            ModelVersion(
                version="gray-bench",
                kind="gray",
                stage="production",
                run_id=db.saved_id(run),
                dataset="bench-v1",
                arch="resnet18",
                bento_tag=tag,
                stage_changed_by="bench/serving.py",
                threshold=1e-6,  # never Unknown: what is kept is the share's choice (phase 4)
            )
        )
        s.commit()
    return "gray-bench"


def images(n: int = 64, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8), "L").save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def forward_limit(settings: Settings, data: list[bytes], batch_size: int, seconds: float = 5.0) -> float:
    """Images per second of batched forward passes in this process (the ceiling for any server)."""
    deployed = load_deployed(settings, "gray-bench")
    batch = np.stack([preprocess(data[i % len(data)], deployed.prep).numpy() for i in range(batch_size)])
    deployed.probabilities(batch)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        deployed.probabilities(batch)
        done += batch_size
    return done / (time.perf_counter() - started)


def _cpu_s(pids: list[int]) -> float:
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


def keeping(settings: Settings, requests: int, rounds: int) -> dict:
    """Batched /classify at c=32 per keep share, in alternating rounds (drift on a shared machine hits every share
    alike); fresh images every round. Returns figures per share, with what the service kept."""
    shares = {"off": "0", "default": "0.02", "all": "1.0"}
    runs: dict[str, list[dict]] = {name: [] for name in shares}
    seed = 1000
    for _ in range(rounds):
        for name, share in shares.items():
            os.environ["AOI_SERVING__KEEP_SHARE"] = share
            seed += 1
            data = images(requests, seed)
            server = process.start_background(Settings())
            try:
                root = psutil.Process(server.pid)
                pids = [root.pid, *(p.pid for p in root.children(recursive=True))]
                run_load(server.url, images(64, 7), 64, 8)  # warm-up: images kept in every share alike
                server_cpu = _cpu_s(pids)
                figures = run_load(server.url, data, requests, max(CONCURRENCY)).figures()
                kept = httpx.get(f"{server.url}/model", timeout=10).json()["kept_answers"]
                if not _idle(server.url):  # the writer's work counts too: wait until it has written everything
                    print("keep: the writer did not catch up within 30 s", flush=True)
                figures["server_cpu_ms_per_request"] = round((_cpu_s(pids) - server_cpu) / requests * 1e3, 2)
                figures["kept_answers"] = kept
            finally:
                process.stop(settings)
            runs[name].append(figures)
            print(
                f"keep {name:7s} share {share:4s} {figures['req_per_s']:7.1f} req/s  p50 {figures['p50_ms']:7.1f} ms  "
                f"p99 {figures['p99_ms']:7.1f} ms  errors {figures['errors']}  server CPU "
                f"{figures['server_cpu_ms_per_request']:.1f} ms/request  kept "
                f"{figures['kept_answers']['kept'] + figures['kept_answers']['queued']} (skipped "
                f"{figures['kept_answers']['skipped_queue_full']})",
                flush=True,
            )
    os.environ.pop("AOI_SERVING__KEEP_SHARE", None)
    out: dict = {}
    for name, done in runs.items():
        out[name] = {
            "req_per_s": round(sum(f["req_per_s"] for f in done) / len(done), 1),
            "p50_ms": round(sum(f["p50_ms"] for f in done) / len(done), 1),
            "p99_ms": round(max(f["p99_ms"] for f in done), 1),
            "errors": sum(f["errors"] for f in done),
            "rounds": [f["req_per_s"] for f in done],
            "server_cpu_ms_per_request": round(sum(f["server_cpu_ms_per_request"] for f in done) / len(done), 2),
        }
    out["all_over_off"] = round(out["all"]["req_per_s"] / out["off"]["req_per_s"], 3)
    out["default_over_off"] = round(out["default"]["req_per_s"] / out["off"]["req_per_s"], 3)
    # The server is CPU-bound: the ratio of its CPU per request is what the throughput ratio tends to on a machine
    # whose other load does not move between runs (this one's throughput moves with its neighbours).
    cpu = {name: out[name]["server_cpu_ms_per_request"] for name in shares}
    out["all_over_off_by_cpu"] = round(cpu["off"] / cpu["all"], 3)
    out["default_over_off_by_cpu"] = round(cpu["off"] / cpu["default"], 3)
    return out


def _idle(url: str, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/model", timeout=10).json()["kept_answers"]["queued"] == 0:
            return True
        time.sleep(0.2)
    return False


def served(settings: Settings, data: list[bytes], requests: int) -> dict:
    """Figures per concurrency level, with the CPU the server and this client spent per request: both share
    this machine's cores with the model, which is what keeps /classify below the in-process limit."""
    server = process.start_background(settings)
    try:
        root = psutil.Process(server.pid)
        pids = [root.pid, *(p.pid for p in root.children(recursive=True))]
        run_load(server.url, data, 64, 8)  # warm-up
        out: dict[int | str, dict] = {}
        for c in CONCURRENCY:
            n = requests if c > 1 else requests // 4
            server_cpu, client_cpu = _cpu_s(pids), time.process_time()
            figures = run_load(server.url, data, n, c).figures()
            figures["server_cpu_ms_per_request"] = round((_cpu_s(pids) - server_cpu) / n * 1e3, 2)
            figures["client_cpu_ms_per_request"] = round((time.process_time() - client_cpu) / n * 1e3, 2)
            out[c] = figures
        out["batching"] = httpx.get(f"{server.url}/model", timeout=10).json()["batching"]["gray"]
        return out
    finally:
        process.stop(settings)


def _print_keeping(keep: dict) -> None:
    print(
        f"keeping: every answer kept {keep['all_over_off']:.3f}x, the default share {keep['default_over_off']:.3f}x "
        f"the throughput with none kept (by server CPU per request: {keep['all_over_off_by_cpu']:.3f}x and "
        f"{keep['default_over_off_by_cpu']:.3f}x)",
        flush=True,
    )


def step_costs(settings: Settings, data: list[bytes], repeats: int = 400) -> dict[str, float]:
    """CPU-ms of each step of /classify's request path for one image, each timed alone in this process."""
    from starlette.requests import Request

    from aoi import image_metrics
    from aoi.image_metrics import measure
    from aoi.preprocess import to_tensor
    from serving.answer import decide, log_row
    from serving.predlog import _json_default
    from serving.rules import load_rules
    from serving.upload import parse_form

    deployed = load_deployed(settings, "gray-bench")
    rules = load_rules(settings.serving.rules)
    content_type = "multipart/form-data; boundary=bench"
    bodies = [
        b'--bench\r\nContent-Disposition: form-data; name="image"; filename="crop.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + d + b'\r\n--bench\r\nContent-Disposition: form-data; name="kind"'
        b'\r\n\r\n"gray"\r\n--bench--\r\n'
        for d in data
    ]
    fresh = [parse_form(content_type, b).encode() for b in bodies]
    loop = asyncio.new_event_loop()
    folder = Path(tempfile.mkdtemp(prefix="aoi-bench-steps-"))

    async def bentoml_form(i: int) -> None:
        """What BentoML does with the guard's fresh body: Starlette's form parser, then a temp file (FileSchema)."""
        new_type, body = fresh[i]

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(b"content-type", new_type.encode()), (b"content-length", str(len(body)).encode())]
        form = await Request({"type": "http", "method": "POST", "headers": headers}, receive).form()
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as fh:
            fh.write(await form["image"].read())  # type: ignore[union-attr]
        await form.close()
        os.unlink(fh.name)

    def probe(i: int) -> None:
        with Image.open(io.BytesIO(data[i]), formats=settings.serving.image_formats) as image:
            _ = image.size, image.mode

    metrics = [measure(d, allowed_modes=("L",)) for d in data]
    # Absent before the service decoded an upload once (a run on an older commit, for a before/after comparison).
    measure_decoded = getattr(image_metrics, "measure_decoded", None)
    answers = [
        decide(deployed, np.full(len(deployed.taxonomy.fine), 0.1), rules, request_id=uuid.uuid4().hex, metrics=m)
        for m in metrics
    ]
    steps = {
        "guard: strict multipart parse + re-encode": lambda i: parse_form(content_type, bodies[i]).encode(),
        "BentoML multipart parse + temp file": lambda i: loop.run_until_complete(bentoml_form(i)),
        "header probe": probe,
        "decode + tone/quality metrics": lambda i: measure(data[i], allowed_modes=("L",)),
        "preprocess, decoding again (before)": lambda i: preprocess(data[i], deployed.prep).numpy(),
        "sha256": lambda i: hashlib.sha256(data[i]).hexdigest(),
        "answer (decide)": lambda i: decide(
            deployed, np.full(len(deployed.taxonomy.fine), 0.1), rules, request_id="r", metrics=metrics[i]
        ),
        "log row + journal line": lambda i: json.dumps(
            log_row(answers[i], metrics[i], "0" * 64, 1.0), default=_json_default
        ),
        "response JSON": lambda i: answers[i].model_dump_json(),
    }
    if measure_decoded is not None:
        decoded = [measure_decoded(d, allowed_modes=("L",))[1] for d in data]
        steps["preprocess from the metrics' decode (after)"] = lambda i: to_tensor(decoded[i], deployed.prep).numpy()
    out = {}
    try:
        for name, step in steps.items():
            for i in range(20):
                step(i % len(data))
            started = time.process_time()
            for i in range(repeats):
                step(i % len(data))
            out[name] = round((time.process_time() - started) / repeats * 1e3, 3)
    finally:
        loop.close()
        shutil.rmtree(folder, ignore_errors=True)
    return out


def _step_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, marks in STEPS:
            if any(mark in frame for mark in marks):
                return name
    return "other"


def cpu_by_step(raw: Path, rate: int, requests: int) -> dict[str, dict[str, float]]:
    """py-spy's raw samples grouped by step: {step: {GIL-held ms per request, share of the GIL-held samples}}.

    The GIL-held time is the Python side's CPU (one event loop and its worker threads take turns holding it), but
    on a loaded machine it also counts time the holder waited for a core. torch computes outside the GIL: the model's
    own CPU is the in-process limit's (``limit_cpu_ms_per_image``), not its share here."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not n.isdigit() or any(idle in frames[-1] for idle in IDLE):
            continue
        roots = [j for j, f in enumerate(frames) if "Runner.run" in f]  # drop the frames that start the server
        counts[_step_of(frames[roots[-1] :] if roots else frames)] += int(n)
    total = sum(counts.values())
    return {
        name: {"gil_ms": round(n * 1e3 / rate / requests, 2), "share": round(n / total, 3)}
        for name, n in counts.most_common()
    }


def profile_served(settings: Settings, data: list[bytes]) -> dict:
    """Samples the served process with py-spy while /classify runs at the highest concurrency."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    server = process.start_background(settings)
    raw = Path(tempfile.mkdtemp(prefix="aoi-bench-spy-")) / "samples.txt"
    try:
        root = psutil.Process(server.pid)
        pids = [root.pid, *(p.pid for p in root.children(recursive=True))]
        worker = max(pids, key=lambda pid: psutil.Process(pid).memory_info().rss)  # the one that loaded the model
        run_load(server.url, data, 64, 8)  # warm-up
        rate = 200
        options = ["-r", str(rate), "-d", str(PROFILE_S), "--gil", "--threads", "--format", "raw", "-o", str(raw)]
        sampler = subprocess.Popen(
            [spy, "record", "-p", str(worker), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # attached
        done, cpu_before, started = 0, _cpu_s(pids), time.monotonic()
        while sampler.poll() is None and time.monotonic() - started < PROFILE_S + 10:
            run_load(server.url, data, 100, max(CONCURRENCY))
            done += 100
        cpu_ms = (_cpu_s(pids) - cpu_before) / done * 1e3
        _, errors = sampler.communicate(timeout=60)
        if sampler.returncode != 0 or not raw.exists():
            return {"error": f"py-spy could not sample the service: {errors.decode(errors='replace')[-300:]}"}
        # The samples cover PROFILE_S seconds of the load: the requests answered in them, by the mean rate.
        sampled = done * min(1.0, PROFILE_S / (time.monotonic() - started))
        return {
            "server_cpu_ms_per_request": round(cpu_ms, 2),
            "by_step": cpu_by_step(raw, rate, max(1, round(sampled))),
        }
    finally:
        process.stop(settings)
        shutil.rmtree(raw.parent, ignore_errors=True)


RUNTIMES = (("torch fp32", "torch", None), ("export fp32", "onnx", False), ("export INT8", "onnx", True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per concurrency level (c=1: a quarter)")
    parser.add_argument("--keep-rounds", type=int, default=2, help="rounds of the keeping comparison (phase 4)")
    parser.add_argument("--keeping-only", action="store_true", help="run phase 4 only")
    parser.add_argument("--profile", action="store_true", help="also: CPU per step of the request path (py-spy)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aoi-bench-serving-"))
    port = 3900 + os.getpid() % 90
    base = {
        "AOI_HOME": str(home),
        "AOI_SERVING__PORT": str(port),
        "AOI_PREFECT__PORT": str(port + 100),  # its own Prefect server, not one another AOI_HOME holds
        "AOI_SERVING__LOG_FLUSH_S": "1",
        "AOI_EXPORT__MIN_TOP1_AGREEMENT": "0",  # untrained weights: see the module's docstring
        "AOI_EXPORT__MAX_ACCURACY_DELTA": "1",
    }
    os.environ.update(base)
    settings = Settings()
    try:
        production_model(settings)
    finally:
        aoi("ui", "--stop")  # the ingest and dataset commands started this AOI_HOME's Prefect server
    if args.keeping_only:
        keep = keeping(settings, args.requests, args.keep_rounds)
        _print_keeping(keep)
        print(json.dumps({"keeping": keep, "goal": {"keep_all_over_off": 0.9}}))
        return
    data = images()
    size = settings.serving.max_batch_size
    results: dict[str, dict] = {}
    limits: dict[str, float] = {}
    exported: dict[str, dict] = {}
    for name, runtime, int8 in RUNTIMES:
        os.environ["AOI_SERVING__RUNTIME"] = runtime
        os.environ["AOI_SERVING__BATCHING"] = "true"
        if int8 is not None:
            exported[name] = aoi("export", "gray-bench", *(["--int8"] if int8 else []))
        deployed = load_deployed(Settings(), "gray-bench")
        answering = deployed.describe()["runtime"]
        limits[name] = forward_limit(Settings(), data, size)
        print(
            f"{name:12s} limit: batched forward in-process {limits[name]:.0f} images/s (batch {size}, {answering})",
            flush=True,
        )
        results[name] = served(Settings(), data, args.requests)
        results[name]["runtime"] = answering
        for c in CONCURRENCY:
            figures = results[name][c]
            print(
                f"{name:12s} c={c:<3d} {figures['req_per_s']:7.1f} req/s  p50 {figures['p50_ms']:7.1f} ms  "
                f"p99 {figures['p99_ms']:7.1f} ms  errors {figures['errors']}  CPU per request: server "
                f"{figures['server_cpu_ms_per_request']:.1f} ms, client {figures['client_cpu_ms_per_request']:.1f} ms",
                flush=True,
            )
        print(f"{name:12s} batches {results[name]['batching']}", flush=True)
    os.environ["AOI_SERVING__RUNTIME"], os.environ["AOI_SERVING__BATCHING"] = "torch", "false"
    naive = served(Settings(), data, args.requests)
    os.environ["AOI_SERVING__RUNTIME"], os.environ["AOI_SERVING__BATCHING"] = "torch", "true"
    keep = keeping(settings, args.requests, args.keep_rounds)
    _print_keeping(keep)
    profile = None
    if args.profile:
        os.environ["AOI_SERVING__BATCHING"] = "true"
        profile = {"steps_alone_cpu_ms": step_costs(settings, data), "served": profile_served(Settings(), data)}
        for name, ms in profile["steps_alone_cpu_ms"].items():
            print(f"step alone  {name:48s} {ms:6.3f} CPU-ms", flush=True)
        served_profile = profile["served"]
        if "error" in served_profile:
            print(f"served profile: {served_profile['error']}", flush=True)
        else:
            print(f"served at c={max(CONCURRENCY)}: {served_profile['server_cpu_ms_per_request']} CPU-ms a request")
            for name, step in served_profile["by_step"].items():
                print(f"  {name:50s} GIL held {step['gil_ms']:6.2f} ms  {step['share']:6.1%}", flush=True)
    top = max(CONCURRENCY)
    torch_rps = results["torch fp32"][top]["req_per_s"]
    summary = {
        "device": exported["export fp32"]["latency"]["device"],
        "limit_images_per_s": {name: round(v, 1) for name, v in limits.items()},
        "limit_cpu_ms_per_image": {name: round((os.cpu_count() or 1) / v * 1e3, 2) for name, v in limits.items()},
        "exports": {
            name: {k: e[k] for k in ("engine", "engines", "latency", "parity")} for name, e in exported.items()
        },
        "served": {name: {str(c): f for c, f in r.items()} for name, r in results.items()},
        "naive_torch": {str(c): f for c, f in naive.items()},
        "int8_forward_over_torch": round(limits["export INT8"] / limits["torch fp32"], 2),
        f"c{top}_over_torch": {
            name: round(r[top]["req_per_s"] / torch_rps, 2) for name, r in results.items() if name != "torch fp32"
        },
        f"c{top}_share_of_own_limit": {
            name: round(r[top]["req_per_s"] / limits[name], 3) for name, r in results.items()
        },
        f"batched_over_naive_c{top}": round(torch_rps / naive[top]["req_per_s"], 2),
        "keeping": keep,
        "goal": {
            "int8_forward_over_torch": 2.5,
            "over_torch": 1.5,
            "share_of_limit": 0.5,
            "over_naive": 2.0,
            "keep_all_over_off": 0.9,
        },
    }
    if profile is not None:
        summary["profile"] = profile
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
