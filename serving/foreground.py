"""What ``aoi serve`` becomes in the foreground: ``python -m serving.foreground COMMAND...``.

The CLI process, with everything it imported, is replaced (exec) by this one, which imports nothing but the
standard library while it waits. It starts the service in a process group of its own, passes SIGINT, SIGTERM and
SIGHUP on to that whole group (SIGHUP as SIGTERM: BentoML's arbiter takes SIGHUP as "reload"), and exits with the
service's status once the group is gone, so a signal to ``aoi serve`` never leaves the service running. If this
process itself is killed outright, the kernel sends the service SIGTERM (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGTERM}
GRACE_S = 30.0  # after a signal: how long the group has to stop (the prediction log flushes) before SIGKILL


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):  # not Linux: the signal forwarding below still holds
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def run(command: list[str]) -> int:
    child = subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent)
    group, received = child.pid, []

    def forward(signum, _frame) -> None:
        received.append(signum)
        _signal_group(group, FORWARDED[signum])

    for signum in FORWARDED:
        signal.signal(signum, forward)
    deadline = None
    while True:
        try:
            code = child.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if received and deadline is None:
                deadline = time.monotonic() + GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                _signal_group(group, signal.SIGKILL)
    # The service's first process is gone; its workers follow it (or are made to).
    deadline = time.monotonic() + (GRACE_S if received else 5.0)
    while _group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(group):
        _signal_group(group, signal.SIGKILL)
    if code < 0:  # killed by a signal: the shell's convention
        return 128 - code
    return code


def main() -> None:
    if len(sys.argv) < 2:
        sys.stderr.write("usage: python -m serving.foreground COMMAND [ARG...]\n")
        sys.exit(2)
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
