"""A production gray model, its reference frame, and a way to log answers into the prediction log as the
service does, drawn from the reference (an undrifted window) or with the lamp of one machine dimmed."""

from __future__ import annotations
