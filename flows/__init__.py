"""Prefect flows: wiring only. Each flow reads like a table of contents of calls into the stage packages."""
