"""Under paddle.distributed.launch: the exit status the launcher reports for a usage error.

The launcher exits with the status of the first of its processes, in rank order, that
failed, and stops the others with SIGTERM as soon as one fails. Every process checks the
same settings and files, so whichever meets a bad one first ends with status 2; when that
is a rank > 0, rank 0 is stopped by the launcher's SIGTERM, and its status (143) would be
the launcher's. So a process that ends on a usage error notes its status where the other
processes of its launcher look (a folder named for the launcher, their parent process), and
a process stopped by a signal before it has trained ends with that status instead. That
takes rank 0's handler (signals.install), which `import paddle` replaces with Paddle's own
until then: rank 0 says when it listens, and a rank > 0 that fails first waits for that (or
for the launcher's end, at most WAIT seconds) before it ends.
"""

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import time
from os import path as osp
from typing import Optional

WAIT = 120.0  # seconds a failing rank > 0 waits at most for rank 0 to listen
LISTENING = "rank0-listening"


def _folder() -> Optional[str]:
    """The folder this launcher's processes share, or None without a launcher."""
    if "PADDLE_TRAINER_ID" not in os.environ:
        return None
    launcher = os.getppid()
    try:
        with open(f"/proc/{launcher}/stat") as f:  # its start time: pids are reused
            started = f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = "0"
    return osp.join(tempfile.gettempdir(), f"wgangp-launch-{launcher}-{started}")


def note_failure(code: int) -> None:
    """Note that this process ends on a usage error with `code` (the first note stays); the
    launcher's first process needs none, the launcher reports its status first. From here
    on the launcher's SIGTERM is ignored: the process is ending with `code` already, and a
    SIGTERM during the interpreter's shutdown (its handlers gone) would end it with 143."""
    folder = _folder()
    if folder is None:
        return
    with contextlib.suppress(ValueError):  # not the main thread: the handler stays
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("PADDLE_LOCAL_RANK", "0") == "0":
        return
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(osp.join(folder, "status"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # noted already, or nowhere to note it: the launcher reports as it does
        return
    with os.fdopen(fd, "w") as f:
        f.write(f"{code}\n")
    _wait_for_first(folder)


def _wait_for_first(folder: str) -> None:
    """Until the launcher's first process handles the launcher's SIGTERM (listen()): before
    that, the signal would kill it with 143, the status the launcher reports."""
    launcher, deadline = os.getppid(), time.monotonic() + WAIT
    while not osp.exists(osp.join(folder, LISTENING)) and time.monotonic() < deadline:
        if os.getppid() != launcher:  # the launcher has ended
            return
        time.sleep(0.05)


def listen() -> None:
    """Said by the launcher's first process once its signal handler is ours; the folder goes
    when it ends."""
    folder = _folder()
    if folder is None or os.environ.get("PADDLE_LOCAL_RANK", "0") != "0":
        return
    try:
        os.makedirs(folder, exist_ok=True)
        open(osp.join(folder, LISTENING), "w").close()
    except OSError:  # nowhere to say it: a failing rank > 0 waits for WAIT at most
        return
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def peer_failure() -> Optional[int]:
    """The status another process of this launcher ended with on a usage error, if any; the
    launcher's first process, which the launcher reports, removes the note once read."""
    folder = _folder()
    if folder is None:
        return None
    try:
        with open(osp.join(folder, "status")) as f:
            code = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if os.environ.get("PADDLE_LOCAL_RANK", "0") == "0":
        shutil.rmtree(folder, ignore_errors=True)
    return code
