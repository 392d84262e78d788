"""The build-dataset flow's steps: freeze a version. The work is in ``versions``; this module names what the
flow wraps as tasks (and the simulated-line flow's blind set), so a reader finds every step of a stage in one place."""

from __future__ import annotations

from datasets.versions import DatasetError, build, register_blind

freeze = build
hold_out = register_blind

__all__ = ["DatasetError", "freeze", "hold_out"]
