"""The harness: the full-receiver scenario and its books (``scenario``), the comparison with
other runtimes' senders (``compare``), and the benchmark (``bench_runner``, ``bench_workers``).

Rule: like the command line, the harness uses only ``genudp``'s public API, so what it measures
is what a user gets. Its subprocesses run as ``python -m genudp._harness.<module> ...``.
"""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def as_child() -> None:
    """Called first by every subprocess of the harness: Ctrl-C at the terminal reaches the
    whole process group, and only the parent should answer it (one line, no traceback from
    each child); and a child ends with its parent, whatever ends the parent (SIGTERM, SIGHUP,
    SIGKILL), instead of sending on into the void."""
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent ended before the line above
        sys.exit(1)
