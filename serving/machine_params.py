"""Per-machine features the service reads from the Feast online store: the camera parameters for a machine and
part (Auto VRS, GET /machine_params) and the machine's colour calibration (applied by /classify).

Feast is imported and the store opened on the first lookup, in a worker thread (importing Feast takes
seconds): the service starts as fast without it, and a service whose AOI_HOME has no feature repo yet
answers 404 with what to do rather than failing to start.
"""

from __future__ import annotations

import threading

from aoi.settings import Settings

_NOTHING_YET = "no camera parameters imported yet: run `aoi machines import FILE`"


class NoCameraParams(LookupError):
    """No camera parameters for the pair: unknown machine or part, or nothing imported yet."""


class _NoRepo(LookupError):
    """No feature repo in this AOI_HOME yet, or not the view asked for."""


class MachineParams:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store = None
        self._lock = threading.Lock()

    def _open(self):
        with self._lock:
            if self._store is None:
                from features import store

                self._store = store.open_store(self.settings)
            return self._store

    def _online(self, read):
        """``read(store)`` on the online store; _NoRepo when this AOI_HOME has no feature repo yet or the repo was
        applied before the view ``read`` needs existed."""
        from feast.errors import FeastObjectNotFoundException

        from features import store

        if not (store.repo_dir(self.settings) / "registry.db").exists():
            raise _NoRepo
        try:
            return read(self._open())
        except FeastObjectNotFoundException:
            raise _NoRepo from None

    def calibration(self, machine_id: str):
        """The machine's latest colour calibration (a ToneCalibration), or None: no repo yet, no calibration view
        applied, or a machine never calibrated. Those images are classified as captured."""
        from features import calibration

        try:
            return self._online(lambda fs: calibration.online(fs, machine_id))
        except _NoRepo:
            return None

    def lookup(self, machine_id: str, part_no: str) -> dict:
        from features import store

        try:
            found = self._online(lambda fs: store.camera_params_online(fs, machine_id, part_no))
        except _NoRepo:
            raise NoCameraParams(_NOTHING_YET) from None
        if found is None:
            raise NoCameraParams(
                f"no camera parameters for machine {machine_id!r} and part {part_no!r} "
                "(`aoi machines list` shows the known pairs)"
            )
        return found
