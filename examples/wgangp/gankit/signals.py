"""Ctrl-C, SIGTERM, SIGHUP and the other signals that end a job: training stops after its
current generator iteration and keeps its place.

A second signal (a second later or more) stops at once. The exit status is the shells' 128 +
the signal: 130, 143, 129 (SIGQUIT 131, SIGUSR1 138, SIGUSR2 140, SIGXCPU 152). Under
paddle.distributed.launch the launcher passes SIGINT and SIGTERM on to its processes as
SIGTERM and kills them 30 s later: an iteration must end within that. SIGHUP (a dropped ssh
session, a closed terminal window), like any other signal that ends the launcher, kills it,
and its processes, in sessions of their own, would train on unseen: each asks the kernel for
a SIGHUP when the launcher ends (follow_launcher), and stops as on SIGTERM. A terminal that is
gone cannot show the stop's lines; they are in the run's train.log.
A signal the run was started ignoring (a background job of a script, nohup) stays ignored.
"""

import contextlib
import os
import signal
import sys
import time
from typing import Optional

from . import launch_status

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
# the other signals whose default ends a process, as a scheduler's warning or a limit sends
# them (SGE's -notify: SIGUSR1/2; a CPU-time limit: SIGXCPU; Ctrl-\\: SIGQUIT): the same stop
for _signum, _name in (
    (signal.SIGQUIT, "SIGQUIT (Ctrl-\\)"),
    (signal.SIGUSR1, "SIGUSR1"),
    (signal.SIGUSR2, "SIGUSR2"),
    (signal.SIGXCPU, "SIGXCPU"),
):
    CODES[_signum], NAMES[_signum] = 128 + int(_signum), _name
REPEAT = 1.0  # seconds within which a repeated signal is the same one
_console = {"fd": None}  # the launcher's standard error, for rank 0's stop line
_state = {"graceful": False, "requested": None, "at": 0.0, "note": ""}


def install() -> None:
    """Our handler for the signals of CODES (Paddle's own prints a C++ stack on SIGTERM)."""
    for signum in CODES:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _handle)
    follow_launcher()
    launch_status.listen()
    keep_launcher_console()


def keep_launcher_console() -> None:
    """Under paddle.distributed.launch, rank 0 keeps the launcher's own console (its standard
    error) open: on Ctrl-C or SIGTERM the launcher ends at once and no longer echoes rank 0's
    output, so the stop's line would be in <log_dir>/workerlog.0 and train.log only."""
    if (
        _console["fd"] is not None
        or "PADDLE_TRAINER_ID" not in os.environ
        or os.environ.get("PADDLE_LOCAL_RANK", "0") != "0"
    ):
        return
    with contextlib.suppress(OSError):
        _console["fd"] = os.open(f"/proc/{os.getppid()}/fd/2", os.O_WRONLY | os.O_APPEND)


def tell_launcher_console(line: str) -> None:
    """`line` on the launcher's console too (a stop's line: the launcher has ended)."""
    if _console["fd"] is not None:
        with contextlib.suppress(OSError):
            os.write(_console["fd"], f"{line}\n".encode())


def follow_launcher() -> None:
    """Under paddle.distributed.launch: a SIGHUP to this process when the launcher ends (Linux's
    PR_SET_PDEATHSIG), or now if it already has: the launcher dies of the SIGHUP of a dropped
    terminal without passing it on, and its processes run in sessions of their own."""
    if "PADDLE_TRAINER_ID" not in os.environ or signal.getsignal(signal.SIGHUP) is not _handle:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGHUP), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() == 1:  # the launcher ended before the request
        os.kill(os.getpid(), signal.SIGHUP)


def _say(text: str) -> None:
    """A line on stderr; once the terminal is gone (SIGHUP), its writes fail (EIO), and the
    process's output goes to /dev/null from then on, so that nothing fails on it again."""
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)


def _handle(signum, frame) -> None:
    peer = launch_status.peer_failure()
    if peer is not None:  # the launcher stops this process: another met a usage error
        for other in CODES:  # the launcher's repeats would kill the interpreter's shutdown
            signal.signal(other, signal.SIG_IGN)
        _say(
            f"\nStopped: another process of this launch ended on an error (status {peer}, "
            "its ERROR line above or in its log)."
        )
        raise SystemExit(peer)
    now = time.monotonic()
    if _state["requested"] is not None and now - _state["at"] < REPEAT:
        return  # paddle.distributed.launch sends its SIGTERM three times in 0.4 s
    if _state["graceful"] and _state["requested"] is None:
        _state["requested"], _state["at"] = signum, now
        again = "Ctrl-C" if signum == signal.SIGINT else NAMES[signum]
        _say(
            f"\n{NAMES[signum]}: stopping after this generator iteration and saving where the "
            f"run stands ({again} again stops at once)."
        )
        return
    _say(f"\nStopped by {NAMES[signum]}.{_state['note']}")
    raise SystemExit(CODES[signum])


def note(text: str) -> None:
    """What a stop from now on adds to its line (after training: where the results are)."""
    _state["note"] = f" {text}" if text else ""


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
