"""The last resort: an exception nobody expected ends a script in one line, naming what failed
and the file that holds the full traceback, exit status 1, so that a user can report it.

The traceback is saved in the run directory when this process has claimed one
(traceback.txt; traceback.rank<N>.txt for the other processes under the launcher), else in
the temporary folder. Installed for the scripts by gankit/environment.py (their first
import: sys.excepthook, for what fails outside Hydra) and by guard(), around the scripts'
Hydra task function and start-up callbacks (Hydra prints a task's exceptions itself).
Stops that are meant (SystemExit: UsageError's one line, a signal's stop) pass through.
A console whose reader has gone (a pipe into `head`) no longer prints a traceback for every
log line (_logging_error).
"""

import contextlib
import functools
import logging
import os
import sys
import tempfile
import time
import traceback
from os import path as osp
from typing import Optional

CLAIM = ".wgangp_run"  # startup.CLAIM: the file by which a run owns its directory


def run_dir_of(args) -> Optional[str]:
    """The run directory of a config among `args`, if this run has claimed it."""
    for arg in args:
        for key in ("output_dir", "hydra.run.dir"):
            try:
                directory = arg
                for part in key.split("."):
                    directory = directory[part]
            except Exception:  # not a config, or one without it (or not resolved yet)
                continue
            if directory and osp.isfile(osp.join(str(directory), CLAIM)):
                return osp.abspath(str(directory))
    return None


def save(error: BaseException, run_dir: Optional[str]) -> Optional[str]:
    """The file holding the traceback (None if none could be written)."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    rank = int(os.environ.get("PADDLE_TRAINER_ID", 0) or 0)
    name = "traceback.txt" if rank == 0 else f"traceback.rank{rank}.txt"
    places = [osp.join(run_dir, name)] if run_dir else []
    places.append(
        osp.join(
            tempfile.gettempdir(),
            f"wgangp-traceback-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt",
        )
    )
    for place in places:
        try:
            with open(place, "w") as f:
                f.write(" ".join(sys.argv) + "\n\n" + text)
            return place
        except OSError:
            continue
    return None


def report(error: BaseException, run_dir: Optional[str] = None) -> None:
    """Print the one line for `error` and save its traceback."""
    if interrupted(error):  # Ctrl-C before the scripts' handler is set
        _print("\nStopped by Ctrl-C (SIGINT).")
        return
    what = (str(error).strip().splitlines() or [""])[0][:200]
    what = f"{type(error).__name__}: {what}" if what else type(error).__name__
    hint = (
        "; a package is missing or broken: pip install -r requirements.txt"
        if isinstance(error, ImportError)
        else ""
    )
    try:
        saved = save(error, run_dir)
    except Exception:  # noqa: B902 (the last resort's own fault: the line still comes)
        saved = None
    kept = (
        f"the full traceback is in {saved}; please report it with that file"
        if saved
        else "the traceback could not be saved either; run again with HYDRA_FULL_ERROR=1 to see it"
    )
    try:
        where = place(error)
    except Exception:  # noqa: B902
        where = "no frame"
    _print(f"ERROR: unexpected {what} ({where}){hint}; {kept}.")


def interrupted(error: BaseException) -> bool:
    """Whether `error` is, or was raised by, a Ctrl-C (`import paddle` turns one into an
    ImportError of its own)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def place(error: BaseException) -> str:
    """Where it failed: the last line of the examples' own code, and the innermost line."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "no frame"
    here = osp.dirname(osp.dirname(osp.abspath(__file__)))
    ours = [f for f in frames if osp.abspath(f.filename).startswith(here + os.sep)]
    said = [f"in {osp.relpath(f.filename, here)}:{f.lineno}" for f in ours[-1:]]
    if not ours or ours[-1] is not frames[-1]:
        said.append(f"in {osp.basename(frames[-1].filename)}:{frames[-1].lineno}")
    return ", ".join(said)


def _print(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:  # no terminal left
        pass


def guard(function):
    """`function`, with the last resort for what it raises unexpectedly (exit status 1)."""

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except SystemExit:
            raise
        except BaseException as error:  # noqa: B902 (the last resort)
            report(error, run_dir_of([*args, *kwargs.values()]))
            raise SystemExit(130 if interrupted(error) else 1) from None

    return guarded


def _excepthook(kind, error, tb) -> None:
    """What escapes outside guard(): Python exits with status 1 after it (130 after a
    Ctrl-C, as the shells' status for SIGINT)."""
    report(error)
    if interrupted(error):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(130)


def _logging_error(self, record) -> None:
    """A log line that cannot be written to the console because its reader has gone (a
    pipe into `head` or `less` that ended: EPIPE; a closed terminal: EIO): the console's
    stream goes to /dev/null from then on, with one warning on the other stream, instead of
    a traceback for every line; the run goes on, its log file keeps every line."""
    error = sys.exc_info()[1]
    stream = getattr(self, "stream", None)
    if isinstance(error, OSError) and stream in (sys.stdout, sys.stderr):
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)
        except (OSError, ValueError):
            return
        other = sys.stderr if stream is sys.stdout else sys.stdout
        name = "standard output" if stream is sys.stdout else "standard error"
        try:
            print(
                f"WARNING: {name} is gone ({error.strerror or error}: its reader ended); the "
                "run goes on, and its log file (train.log in the run directory) keeps every "
                "line.",
                file=other,
                flush=True,
            )
        except (OSError, ValueError):
            pass
        return
    _handle_error(self, record)


_handle_error = logging.Handler.handleError


def install() -> None:
    sys.excepthook = _excepthook
    logging.Handler.handleError = _logging_error
