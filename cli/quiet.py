"""A quiet terminal: third-party deprecation warnings filtered at their source, and no Prefect traceback for an
error the user can fix (the CLI prints that error as one line).

Installed by the ``aoi`` entry (``cli.app``'s callback), never by an import. The warning filters only when this
process is the ``aoi`` program, never in tests: a test that calls the app in-process keeps the warnings pytest
shows.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from pathlib import Path

# Our own packages (the layout's stages, the core, flows and the CLI): their warnings always show.
OURS = (
    "aoi",
    "ingest",
    "validation",
    "datasets",
    "features",
    "training",
    "evaluation",
    "promotion",
    "serving",
    "monitoring",
    "demo",
    "flows",
    "cli",
)
CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
_OURS = "(" + "|".join(OURS) + r")(\.|$)"
_NOT_OURS = rf"(?!{_OURS})"
# Subprocesses the CLI starts (Ray workers, the Prefect worker, `aoi promote` from the demo) inherit this.
SUBPROCESS_WARNINGS = ",".join(f"ignore::{c.__name__}" for c in CATEGORIES)

# Errors the user can act on: a flow that raises one failed on its input, not on a bug; its traceback is noise.
USER_ERRORS = frozenset(
    {
        "ApprovalError",
        "CameraParamsError",
        "DatasetError",
        "DatasetUnavailable",
        "EngineError",
        "EvaluationError",
        "ExportError",
        "FeatureStoreError",
        "MonitorError",
        "PromotionError",
        "RayAuthError",
        "RegistryError",
        "SpecError",
        "TrainingError",
    }
)
_USER_ERROR_TEXT = re.compile(r"\b(" + "|".join(sorted(USER_ERRORS)) + r")\b")
_WARNING_LINE = re.compile(r"^(?P<file>.+?):\d+: (?P<category>\w+): ")
_ROOT = Path(__file__).resolve().parent.parent


def is_ours(filename: str) -> bool:
    """A source file of this repository (not of an installed library)."""
    path = Path(filename).resolve()
    return path.is_relative_to(_ROOT) and "site-packages" not in path.parts and ".venv" not in path.parts


class ThirdPartyDeprecations(logging.Filter):
    """Drops a captured warning (logger ``py.warnings``) that is a deprecation of a library, not ours. Libraries
    that reset the warning filters when imported (feast prepends ``once`` for DeprecationWarning) are caught here."""

    def filter(self, record: logging.LogRecord) -> bool:
        match = _WARNING_LINE.match(record.getMessage())
        if match is None:
            return True
        category = match["category"]
        deprecation = "Deprecat" in category or category == FutureWarning.__name__
        return not (deprecation and not is_ours(match["file"]))


class UserErrorTracebacks(logging.Filter):
    """Drops Prefect's console records of a flow or task run that failed on a user error: the CLI says it in one
    line, and the run's state in the Prefect UI keeps the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        names = {t.__name__ for t in type(exc).__mro__} if exc is not None else set()
        return not (names & USER_ERRORS or _USER_ERROR_TEXT.search(record.getMessage()))


def _show_ours_only(message, category, filename, lineno, file=None, line=None, _show=warnings.showwarning) -> None:
    if issubclass(category, CATEGORIES) and not is_ours(filename):
        return
    _show(message, category, filename, lineno, file, line)


def is_the_program() -> bool:
    """True when this process is the ``aoi`` command itself (the console script or ``python -m cli``)."""
    program = Path(sys.argv[0]).name if sys.argv else ""
    return program == "aoi" or (program == "__main__.py" and Path(sys.argv[0]).parent.name == "cli")


def quiet_user_errors() -> None:
    """No Prefect traceback in the terminal for a flow or task run that failed on a user error (every CLI run)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, UserErrorTracebacks) for f in logger.filters):
            logger.addFilter(UserErrorTracebacks())


_installed = False


def install() -> None:
    """Filter third-party deprecation warnings in this process and the ones it starts; keep ours."""
    global _installed
    if _installed:
        return
    _installed = True
    for category in CATEGORIES:
        warnings.filterwarnings("ignore", category=category, module=_NOT_OURS)
        warnings.filterwarnings("default", category=category, module=_OURS)
    # A library that re-adds its own filter at import time (feast) would bring them back: these two catch them
    # where they are shown, printed (showwarning) or captured into logging (great_expectations captures them).
    warnings.showwarning = _show_ours_only
    logging.getLogger("py.warnings").addFilter(ThirdPartyDeprecations())
    inherited = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = f"{inherited},{SUBPROCESS_WARNINGS}" if inherited else SUBPROCESS_WARNINGS
