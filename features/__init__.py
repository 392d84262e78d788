"""Per-machine features in Feast: camera parameters (machine x part), and later tone statistics and colour
calibration per machine. ``definitions.py`` documents every object; ``store.py`` opens the repo under
``AOI_HOME/feast`` (SQLite online store, or Redis with ``AOI_FEAST_ONLINE``)."""
