"""Ingest: importers discover candidates, one pipeline hashes, measures, stores and catalogs them.

Importers (``ingest.importers``) only know a layout; the pipeline (``ingest.pipeline``) only knows
candidates. The Prefect flow in ``flows/ingest_batch.py`` wires the two.
"""
