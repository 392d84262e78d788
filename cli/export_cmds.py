"""``aoi export``: a model version as ONNX (fp32 or INT8), judged against PyTorch, with its latency on this device."""

from __future__ import annotations

import typer

from aoi.settings import get_settings
from cli.choices import ExportFormat
from cli.output import JSON_OPTION, console, emit, fail, table


def export(
    model: str = typer.Argument(..., help="A model version (aoi models)."),
    fmt: ExportFormat = typer.Option(ExportFormat.onnx, "--format", help="File format of the export."),
    int8: bool = typer.Option(False, "--int8", help="Static INT8 quantization calibrated on the valid split."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Export a model version, judge it against PyTorch on the blind sets (the parity gate) and measure its latency;
    a refused export exits 2 with its figures."""
    from evaluation.evaluate import EvaluationError
    from export.engines import EngineError
    from export.exports import ExportError, export_model
    from training.registry import RegistryError

    try:
        result = export_model(get_settings(), model, fmt.value, int8)
    except (ExportError, EngineError, EvaluationError, RegistryError) as err:
        fail(str(err), as_json, code=2)
    if not result["accepted"]:
        fail(f"{model}: export {result['reason']}", as_json, code=2, **result)

    def render(r: dict) -> None:
        latency, parity = r["latency"], r["parity"]
        table(
            [
                {"runtime": f"export ({r['engine']})", **latency},
                {
                    "runtime": "pytorch",
                    "batch1_ms": latency["torch_batch1_ms"],
                    "batch32_images_per_s": latency["torch_batch32_images_per_s"],
                },
            ],
            ["runtime", "batch1_ms", "batch32_images_per_s"],
            title=f"{model} {r['format']} {'INT8' if r['int8'] else 'fp32'} on {latency['device']}",
        )
        console.print(
            f"{r['reason']} ({parity['images']} images of {', '.join(parity['blind_sets'])}); file {r['path']}"
        )

    emit(result, as_json, render)
