"""Ctrl-C and SIGTERM: training stops after its current generator iteration and keeps its place.

A second signal (a second later or more) stops at once. The exit status is the shells' 128 +
the signal: 130, 143. Under paddle.distributed.launch the launcher passes a signal on to its
processes as SIGTERM and kills them 30 s later: an iteration must end within that.
A signal the run was started ignoring (a background job of a script, nohup) stays ignored.
"""

import contextlib
import signal
import sys
import time
from typing import Optional

from . import launch_status

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
REPEAT = 1.0  # seconds within which a repeated signal is the same one
_state = {"graceful": False, "requested": None, "at": 0.0}


def install() -> None:
    """Our handler for SIGINT and SIGTERM (Paddle's own prints a C++ stack on SIGTERM)."""
    for signum in CODES:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _handle)


def _handle(signum, frame) -> None:
    peer = launch_status.peer_failure()
    if peer is not None:  # the launcher stops this process: another met a usage error
        for other in CODES:  # the launcher's repeats would kill the interpreter's shutdown
            signal.signal(other, signal.SIG_IGN)
        print(f"\nStopped: another process of this launch ended on an error (status {peer}, "
              "its ERROR line above or in its log).", file=sys.stderr, flush=True)
        raise SystemExit(peer)
    now = time.monotonic()
    if _state["requested"] is not None and now - _state["at"] < REPEAT:
        return  # paddle.distributed.launch sends its SIGTERM three times in 0.4 s
    if _state["graceful"] and _state["requested"] is None:
        _state["requested"], _state["at"] = signum, now
        again = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        print(f"\n{NAMES[signum]}: stopping after this generator iteration and saving where the "
              f"run stands ({again} again stops at once).", file=sys.stderr, flush=True)
        return
    print(f"\nStopped by {NAMES[signum]}.", file=sys.stderr, flush=True)
    raise SystemExit(CODES[signum])


@contextlib.contextmanager
def graceful():
    """Inside the block a first signal is only noted (requested()); training checks it after
    every generator iteration."""
    before, _state["graceful"] = _state["graceful"], True
    try:
        yield
    finally:
        _state["graceful"] = before


def requested() -> Optional[int]:
    """The signal received inside graceful(), if any."""
    return _state["requested"]
