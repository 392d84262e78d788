"""The model page shows each export's parity figures and its latency per device, and the comparison table too."""

from __future__ import annotations

import re

import pytest

from aoi.catalog import db
from aoi.catalog.models import ModelExport, UserRole
from tests.workbench import review_rows
from tests.workbench.helpers import logged_in
from tests.workbench.review_rows import CANDIDATE, PRODUCTION


@pytest.fixture
def rows(catalog_url, settings):
    return review_rows.review_catalog(settings)


def group(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.S)
    assert match, f"no {pattern!r} in the page"
    return match.group(1)


def an_export(version: str, int8: bool, accepted: bool, **figures) -> ModelExport:
    return ModelExport(
        model_version=version,
        format="onnx",
        int8=int8,
        engine="openvino",
        path=f"exports/onnx-{'int8' if int8 else 'fp32'}-0123456789abcdef.onnx",
        sha256="0123456789abcdef" * 4,
        accepted=accepted,
        reason="accepted on 60 blind images" if accepted else "refused: top-1 agreement 0.9700 < 0.9950",
        blind_images=60,
        blind_sets=["g-blind"],
        device="Test CPU 9000 (2 cores)",
        **figures,
    )


def test_the_model_page_shows_exports_with_parity_and_latency_per_device(rows, client, settings):
    logged_in(client, UserRole.viewer)
    assert "Not exported" in client.get(f"/models/{CANDIDATE}").text
    with db.session(settings.catalog_url) as s:
        s.add(
            an_export(
                CANDIDATE,
                False,
                True,
                top1_agreement=1.0,
                blind_accuracy_torch=0.85,
                blind_accuracy_export=0.85,
                batch1_ms=3.25,
                batch32_images_per_s=410.0,
                torch_batch1_ms=9.5,
                torch_batch32_images_per_s=150.0,
            )
        )
        s.add(
            an_export(
                CANDIDATE,
                True,
                False,
                top1_agreement=0.97,
                blind_accuracy_torch=0.85,
                blind_accuracy_export=0.8167,
                batch1_ms=1.5,
                batch32_images_per_s=905.0,
                torch_batch1_ms=9.5,
                torch_batch32_images_per_s=150.0,
            )
        )
        s.commit()
    page = client.get(f"/models/{CANDIDATE}").text
    table = group(r'id="export-table">(.*?)</table>', page)
    fp32 = group(r'class="export-accepted"(.*?)</tr>', table)
    int8 = group(r'class="export-refused"(.*?)</tr>', table)
    assert "onnx fp32 (openvino)" in fp32 and "100.00%" in fp32 and "3.25 ms" in fp32 and "410 images/s" in fp32
    assert "onnx INT8 (openvino)" in int8 and "97.00%" in int8 and "85.00% → 81.67%" in int8 and "905 images/s" in int8
    assert "Test CPU 9000 (2 cores)" in fp32 and "9.50 ms / 150 images/s" in fp32
    comparison = group(r'id="comparison">(.*?)</table>', page)
    assert "export INT8" in comparison and "refused" in comparison and "905 images/s at 32 on Test CPU" in comparison
    assert "Not exported" in client.get(f"/models/{PRODUCTION}").text
