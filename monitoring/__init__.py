"""Drift monitoring: the prediction log against the production model's reference, with Evidently."""
