"""Exported model versions: ONNX (fp32 and static INT8), the parity gate against PyTorch on the blind sets, and the
latency measured on the device that exported them. Serving runs an accepted export in place of PyTorch."""
