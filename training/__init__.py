"""Training: taxonomy, data over a dataset version, the model, the per-worker loop, and the Ray trainer.

Knows nothing of orchestration: the Prefect ``train`` flow in ``flows/`` calls into it.
"""
