"""Workbench latency, measured in one run on this machine:

1. gallery page (first page, a deep page by keyset, a filtered page) and image page latency, p50 and p99, on
   catalogs of 20k and 200k generated image rows (bulk-inserted rows without bytes, SQLite), and the ratio
   200k / 20k (goal <= 1.5: paging by keyset and indexed filters do not grow with the catalog); also the
   counts per label, which the page loads after itself (they read every matching row: they grow);
2. a gallery page of 100 thumbnails with the thumbnails cached (the page and its 100 thumbnail requests)
   against 100 single-image classifications: decode + preprocess + one forward pass each of the demo's gray
   model (resnet18, 64 px, untrained weights: speed does not depend on them) on the CPU, in this process. That
   is the model's share of 100 `/classify` calls, without HTTP or the service's other work: a lower bound on
   their time (starting the BentoML service costs more than this whole benchmark).

Requests go through the ASGI app in process (Starlette's test client): no network, the same code path as
uvicorn minus the socket.

    .venv/bin/python bench/web.py [--sizes 20000 200000] [--requests 60]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.catalog import db
from aoi.catalog.models import Image, IngestBatch, table_of
from aoi.settings import Settings
from aoi.store import ImageStore
from workbench.app import create_app
from workbench.auth import add_user

LABELS = ("Short", "Spur", "Open", "Mouse_bite", "Copper", "Pin_hole")
MACHINES = tuple(f"AOI-{i}" for i in range(1, 9))
REAL = 100  # the newest rows carry real bytes: the first gallery page shows their thumbnails
PASSWORD = "bench password 1"
START = datetime(2026, 1, 1, tzinfo=UTC)


def picture(k: int) -> bytes:
    rng = np.random.default_rng(k)
    out = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L").save(out, "PNG")
    return out.getvalue()


def fill(settings: Settings, n: int) -> None:
    """``n`` rows: the oldest n - REAL without bytes, the newest REAL with real 64 px PNGs in the store."""
    store = ImageStore(settings.store_dir, fsync=False)
    with db.session(settings.catalog_url) as s:
        batch = IngestBatch(key="bench", format="folder", input_path="bench", status="succeeded")
        s.add(batch)
        s.commit()
        rows: list[dict] = []
        for k in range(n):
            real = k >= n - REAL
            data = picture(k) if real else b""
            sha = store.put(data) if real else hashlib.sha256(f"bench-{k}".encode()).hexdigest()
            rows.append(
                {
                    "sha256": sha,
                    "file_name": f"board_{k // 40:05d}_roi_{k % 40}.png",
                    "origin": f"bench/{k}.png",
                    "source": "gray" if k % 2 == 0 else "color",
                    "label": LABELS[k % len(LABELS)],
                    "status": "excluded" if k % 20 == 7 else "labeled",
                    "width": 64,
                    "height": 64,
                    "mode": "L",
                    "format": "PNG",
                    "byte_size": len(data) or 4096,
                    "captured_at": START + timedelta(seconds=30 * k),
                    "ingested_at": START + timedelta(seconds=30 * k),
                    "machine_id": MACHINES[k % len(MACHINES)],
                    "part_no": f"P-{k % 50:03d}",
                    "batch_id": batch.id,
                    "bytes_per_pixel": 1.0,
                    "compressed": False,
                    **dict.fromkeys(("brightness", "mean_r", "mean_g", "mean_b"), 120.0),
                    **dict.fromkeys(("r_minus_g", "r_minus_b", "g_minus_b", "b_diff"), 0.0),
                }
            )
            if len(rows) == 5000:
                s.execute(insert(table_of(Image)), rows)
                rows.clear()
        if rows:
            s.execute(insert(table_of(Image)), rows)
        add_user(s, "bench", "viewer", PASSWORD)
        s.commit()


def login(client: TestClient) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    form = {"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303


def timed(client: TestClient, urls: list[str]) -> dict:
    """p50 and p99 in ms over ``urls`` (each must answer 200), after one warm-up request."""
    assert client.get(urls[0]).status_code == 200
    times = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1e3)
        assert response.status_code == 200, (url, response.status_code)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 2),
        "n": len(times),
    }


def measure(size: int, requests: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"aoi-bench-web-{size}-"))
    os.environ["AOI_HOME"] = str(home)
    settings = Settings()
    started = time.perf_counter()
    fill(settings, size)
    fill_s = time.perf_counter() - started
    with db.session(settings.catalog_url) as s:
        ids = [int(i) for i in s.connection().execute(select(table_of(Image).c.id).order_by("id")).scalars()]
    rng = np.random.default_rng(1)
    with TestClient(create_app(settings)) as client:
        login(client)
        deep = ids[len(ids) // 2]
        out = {
            "rows": size,
            "fill_s": round(fill_s, 1),
            "gallery_first": timed(client, ["/gallery"] * requests),
            "gallery_deep": timed(client, [f"/gallery?after={deep - int(i)}" for i in rng.integers(0, 1000, requests)]),
            "gallery_filtered": timed(
                client,
                [f"/gallery?source=gray&label=Short&machine=AOI-3&after={ids[-1] - int(i)}" for i in range(requests)],
            ),
            # The counts per label (loaded by the page after its thumbnails) read every matching row: reported,
            # not part of the page's figures.
            "counts": timed(client, ["/gallery/counts"] * max(3, requests // 4)),
            "counts_filtered": timed(client, ["/gallery/counts?source=gray&machine=AOI-3"] * max(3, requests // 4)),
            "image_page": timed(client, [f"/images/{ids[int(i)]}" for i in rng.integers(0, len(ids), requests)]),
        }
        newest = ids[-REAL:]
        for image_id in newest:  # make the thumbnails once: the figures below are with them cached
            assert client.get(f"/images/{image_id}/thumb").status_code == 200
        rounds = []
        for _ in range(5):
            began = time.perf_counter()
            page = client.get("/gallery")
            shown = [int(i) for i in re.findall(r'data-id="(\d+)"', page.text)]
            for image_id in shown:
                assert client.get(f"/images/{image_id}/thumb").status_code == 200
            rounds.append((time.perf_counter() - began) * 1e3)
        assert len(shown) == REAL
        out["gallery_100_thumbs_cached_ms"] = round(statistics.median(rounds), 1)
    db.reset_engines()
    return out


def classify_100_on_cpu() -> float:
    """ms for 100 decodes + preprocesses + single-image forward passes of the demo's gray model, on the CPU."""
    import torch

    from aoi.preprocess import Preprocessing, preprocess
    from training.model import build_model
    from training.taxonomy import Taxonomy

    prep = Preprocessing(input_size=64, channels=1)
    model = build_model("resnet18", len(Taxonomy.load("gray").fine), prep.channels).eval()
    data = [picture(k) for k in range(100)]
    with torch.inference_mode():
        model(preprocess(data[0], prep).unsqueeze(0))  # warm-up
        rounds = []
        for _ in range(3):
            began = time.perf_counter()
            for item in data:
                torch.softmax(model(preprocess(item, prep).unsqueeze(0)), dim=1)
            rounds.append((time.perf_counter() - began) * 1e3)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(20_000, 200_000), help="the small and large catalog")
    parser.add_argument("--requests", type=int, default=60, help="requests per measured page kind")
    args = parser.parse_args()
    results = {}
    for size in args.sizes:
        results[size] = measure(size, args.requests)
        r = results[size]
        print(
            f"{size:>7d} rows (filled in {r['fill_s']} s): "
            + "  ".join(f"{k} p50 {r[k]['p50_ms']} ms p99 {r[k]['p99_ms']} ms" for k in r if isinstance(r[k], dict))
            + f"  gallery of 100 cached thumbnails {r['gallery_100_thumbs_cached_ms']} ms",
            flush=True,
        )
    small, large = (results[s] for s in args.sizes)
    kinds = ("gallery_first", "gallery_deep", "gallery_filtered", "image_page")
    ratios = {k: round(large[k]["p50_ms"] / small[k]["p50_ms"], 2) for k in kinds}
    counts_ratio = {k: round(large[k]["p50_ms"] / small[k]["p50_ms"], 2) for k in ("counts", "counts_filtered")}
    classify_ms = classify_100_on_cpu()
    print(f"p50 ratio {args.sizes[1]} / {args.sizes[0]}: {ratios}", flush=True)
    print(f"100 decodes + forward passes (resnet18 gray 64 px, CPU): {classify_ms:.0f} ms", flush=True)
    summary = {
        "sizes": list(args.sizes),
        "results": {str(k): v for k, v in results.items()},
        "p50_ratio_large_over_small": ratios,
        "worst_ratio": max(ratios.values()),
        "counts_p50_ratio": counts_ratio,
        "gallery_100_thumbs_cached_ms": large["gallery_100_thumbs_cached_ms"],
        "classify_100_cpu_forward_ms": round(classify_ms, 1),
        "classify_note": "100 decodes + single forward passes in process, no HTTP: a lower bound of 100 /classify",
        "goal": {"ratio": 1.5, "gallery_below_classify": True},
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
