"""Helpers the monitoring tests share: logged answers and tone frames (bench/traffic.py, which the benchmark uses
too)."""

from bench.traffic import T0, dimmed, log_answers, synthetic

__all__ = ["T0", "dimmed", "log_answers", "synthetic"]
