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

    def calibration(self, machine_id: str):
        """The machine's latest colour calibration (a ToneCalibration), or None: no repo yet, no calibration view
        applied, or a machine never calibrated. Those images are classified as captured."""
        from features import calibration, store

        from feast.errors import FeastObjectNotFoundException

        if not (store.repo_dir(self.settings) / "registry.db").exists():
            return None
        try:
            return calibration.online(self._open(), machine_id)
        except FeastObjectNotFoundException:  # a repo applied before the calibration view existed
            return None

    def lookup(self, machine_id: str, part_no: str) -> dict:
        from features import store

        from feast.errors import FeastObjectNotFoundException

        if not (store.repo_dir(self.settings) / "registry.db").exists():
            raise NoCameraParams(_NOTHING_YET)
        try:
            found = store.camera_params_online(self._open(), machine_id, part_no)
        except FeastObjectNotFoundException:  # a repo without the camera_params view
            raise NoCameraParams(_NOTHING_YET) from None
        if found is None:
            raise NoCameraParams(f"no camera parameters for machine {machine_id!r} and part {part_no!r} "
                                 "(`aoi machines list` shows the known pairs)")  # fmt: skip
        return found
