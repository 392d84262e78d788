"""Evaluation: blind tests, the Unknown filter, confusion matrices, robustness, heat maps, the gate, reports."""
