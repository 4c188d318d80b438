"""What the process needs from its environment, checked before `import paddle`: the scripts'
first import. It imports Paddle itself once the folders are sound, and then installs the
scripts' signal handler over Paddle's.

`import paddle` makes ~/.cache/paddle/dataset and stops with a traceback when it cannot (HOME
naming a file, or a folder under one); ppsci caches downloads in ~/.paddlesci, matplotlib its
fonts in MPLCONFIGDIR, XDG_CONFIG_HOME or XDG_CACHE_HOME. Each folder variable that is set
(HOME always) must name a folder this process can write in, or can create; one that does not
is pointed, for this process only, at a folder of its own under the temporary folder, with
one warning line naming the variable to set. When no temporary folder works either, the
run stops with one line naming the variables (exit 2); so does a current folder that is gone.
"""

import os
import signal
import sys
import tempfile

from . import last_resort

# the variables whose folders the libraries write caches and settings in, and a folder under
# each that they create
FOLDERS = {
    "HOME": (".cache", "paddle", "dataset"),
    "XDG_CACHE_HOME": (),
    "XDG_CONFIG_HOME": (),
    "MPLCONFIGDIR": (),
}


def problem(folder: str, *sub: str) -> str:
    """Why `folder` (with `sub` made in it) cannot hold files, or "" when it can."""
    try:
        path = os.path.join(folder, *sub)
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write_test.{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
        return ""
    except OSError as e:
        return e.strerror or type(e).__name__


def fallback() -> str:
    """A folder of this user's under the temporary folder (the same one each run, so that
    downloads are cached between runs until the system cleans it)."""
    folder = os.path.join(tempfile.gettempdir(), f"wgangp-home-{os.getuid()}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if os.stat(folder).st_uid == os.getuid() and not problem(folder):
            return folder
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="wgangp-home-")


def check() -> None:
    """Point each unusable folder variable at a usable folder, with one warning line; or stop
    in one line when there is none."""
    try:
        os.getcwd()
    except OSError as e:
        print(
            f"ERROR: the current folder cannot be used ({e.strerror}: it was deleted or moved "
            "away while the shell was in it); cd to an existing folder and start again.",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2) from None
    bad = {}
    for name, sub in FOLDERS.items():
        value = os.path.expanduser("~") if name == "HOME" else os.environ.get(name)
        if name == "HOME" and os.environ.get("HOME") == "":  # "~" is then "/": caches there
            bad[name] = ("", "empty")
        elif value:
            why = problem(value, *sub)
            if why:
                bad[name] = (value, why)
    if not bad:
        return
    named = ", ".join(f"{name}={value} ({why})" for name, (value, why) in bad.items())
    try:
        folder = fallback()
    except (OSError, FileNotFoundError) as e:
        print(
            f"ERROR: {named} cannot hold the caches, and no temporary folder works either "
            f"({e}); set {' and '.join(bad)} to a folder you can write in (or TMPDIR).",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2) from None
    for name in bad:
        os.environ[name] = folder if name == "HOME" else os.path.join(folder, name.lower())
    print(
        f"WARNING: {named} cannot hold the caches; this run uses {folder} instead, which the "
        f"system may clean: set {' and '.join(bad)} to a folder you can write in.",
        file=sys.stderr,
        flush=True,
    )


def import_paddle() -> None:
    """Import Paddle now, then put the scripts' signal handler in place of the one Paddle
    installs (a SIGTERM in the seconds of start-up printed Paddle's C++ stack). A Ctrl-C
    during the import is noted and acted on after it: raised inside, it could land in an
    import that catches everything and be lost (seen once under load: the run went on)."""
    interrupted = []
    signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    import paddle  # noqa: F401

    from . import signals

    signals.install()
    if interrupted:
        raise KeyboardInterrupt  # one line and status 130 (last_resort)


last_resort.install()  # an unexpected exception: one line, its traceback saved in a file
check()
import_paddle()
