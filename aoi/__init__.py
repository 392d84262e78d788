"""AOI defect classification MLOps: the core package (settings, catalog, image store, metrics, ingest, CLI).

Importing any module of this package has no side effects: no database is opened, no folder is made,
no server is started. Those happen only when a function is called.
"""

__version__ = "0.1.0"
