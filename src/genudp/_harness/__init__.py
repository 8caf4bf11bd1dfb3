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


#: The parent's pid, in the environment of each child the harness starts (:func:`child_env`).
_PARENT = "GENUDP_HARNESS_PARENT"


def child_env() -> dict[str, str]:
    """The environment of a child of the harness: this one, naming this process as its parent."""
    return dict(os.environ, **{_PARENT: str(os.getpid())})


def as_child() -> None:
    """Called first by every subprocess of the harness, which the harness starts in a process
    group of its own (``process_group=0``): Ctrl-C at the terminal reaches the foreground group,
    and only the parent should answer it (one line, no traceback from each child). Ignoring
    SIGINT covers a child started some other way. And a child ends with its parent, whatever
    ends the parent (SIGTERM, SIGHUP, SIGKILL), instead of sending on into the void."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = os.environ.get(_PARENT)
    if parent is not None and os.getppid() != int(parent):  # it ended before the line above
        sys.exit(1)
