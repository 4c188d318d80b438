"""The command line: what Hydra cannot take from it ends in one line, exit status 2.

`entry` wraps each script's Hydra main function: before Hydra reads the command line, it
quotes the path settings Hydra's grammar reads only quoted (paths as a shell gives them),
and installs the scripts' signal handler (Paddle's own, which `import paddle` installed,
prints a C++ stack on SIGTERM). Hydra's own errors (a setting that does not exist, a value
its grammar cannot read, a config group that does not exist) come as one line, with the
setting meant when the name is close to one; HYDRA_FULL_ERROR=1 still shows Hydra's
traceback. A setting added with "+" to a section these examples check (ppsci ignores
what it does not know) or deleted with "~" is refused the same way (check_added).
"""

import difflib
import functools
import os
import re
import sys
from typing import List, Optional

from . import signals
from .errors import UsageError, first_line

SECTIONS = ("DATA", "MODEL", "LOSS", "TRAIN", "EVAL", "INFER")  # schema.py checks them


def entry(hydra_main):
    """`hydra_main` (a function decorated by hydra.main), run from the command line."""

    @functools.wraps(hydra_main)
    def run():
        quote_paths(sys.argv)
        signals.install()
        try:
            if os.environ.get("HYDRA_FULL_ERROR"):  # the user asked for Hydra's traceback
                return hydra_main()
            os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing its own
            try:
                return hydra_main()
            except Exception as error:  # noqa: B902 (task and callbacks are guarded: Hydra's)
                raise UsageError(hydra_error(error)) from None
        except SystemExit as stop:
            end(stop.code)

    return run


def end(code) -> None:
    """Exit with `code` once the files and logs are closed, without the interpreter's
    teardown: a stop at once (a signal in an evaluation) can leave Paddle's data loader
    thread running, and tearing it down aborted the process ("terminate called without an
    active exception", status -6 instead of 143)."""
    import atexit
    import logging

    if isinstance(code, str):  # sys.exit("message"): Python prints it
        print(code, file=sys.stderr)
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def hydra_error(error: Exception) -> str:
    """One line for an error Hydra met reading the command line."""
    cause = error.__cause__
    key = getattr(cause, "full_key", None)
    if key and "not in struct" in str(cause):
        given = next((a for a in sys.argv[1:] if a.split("=")[0].lstrip("+~") == key), key)
        return f"{given}: no such setting{did_you_mean(key, cause.parent_node)}; {HELP}."
    return f"{first_line(error).rstrip('.')}; {HELP}."


HELP = f"python {os.path.basename(sys.argv[0]) or 'the script'} --help lists the settings"


def did_you_mean(key: str, node, exclude: Optional[str] = None) -> str:
    """ " (did you mean TRAIN.epochs?)" for the setting whose name is closest to `key`."""
    try:
        root = node._get_root()
        names = [name for name in _leaf_names(root) if name != exclude]
    except Exception:  # noqa: B902 (no suggestion is no harm)
        return ""
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if not close:  # the right name in the wrong section, or none: by the last part
        last = key.rsplit(".", 1)[-1]
        ends = {name: name.rsplit(".", 1)[-1] for name in names}
        near = difflib.get_close_matches(last, list(set(ends.values())), n=1, cutoff=0.8)
        close = [name for name, end in ends.items() if near and end == near[0]][:1]
    return f" (did you mean {close[0]}?)" if close else ""


def _leaf_names(node, prefix: str = ""):
    from omegaconf import DictConfig

    for name in node.keys():
        if not prefix and name == "hydra":
            continue
        value = node._get_node(name)
        if isinstance(value, DictConfig):
            yield from _leaf_names(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def check_added(config) -> None:
    """UsageError for a "+KEY=..." the examples would not read (a new key in a checked
    section) and for a "~KEY" (the examples need every setting)."""
    for override in config.hydra.overrides.task:
        key = override.split("=", 1)[0]
        if key.startswith("~"):
            raise UsageError(
                f"{override}: the examples need every setting; give it a value instead "
                f"({key.lstrip('~')}=...); {HELP}."
            )
        name = key.lstrip("+")
        if key.startswith("+") and not key.startswith("++") and name.split(".")[0] in SECTIONS:
            # Hydra adds with "+" only what the config does not have
            raise UsageError(
                f"{override}: no such setting, and these examples would not read it"
                f"{did_you_mean(name, config, exclude=name)}; {HELP}."
            )


PATH_SETTING = re.compile(r"^[+~]*(hydra\.(run|sweep)\.dir|\S*(path|_dir|weights))$")
PLAIN_PATH = re.compile(r"^[A-Za-z0-9_./:\\-]*$")  # what Hydra reads unquoted as it is


def quote_paths(argv: List[str]) -> None:
    """Quote, in place, the path settings of the command line that Hydra's override grammar
    reads only quoted (non-ASCII letters, spaces, ~, commas, brackets, ...): users type
    paths as their shell gives them. Any override Hydra still cannot read stops here with
    one line saying how to write it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for i, arg in enumerate(argv[1:], start=1):
        key, sep, value = arg.partition("=")
        if not sep or arg.startswith("-"):
            continue
        if (
            PATH_SETTING.match(key)
            and value
            and value[0] not in "'\""
            and not PLAIN_PATH.match(value)
            and "${" not in value
        ):
            value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            argv[i] = f"{key}={value}"
        try:
            parser.parse_overrides([argv[i]])
        except Exception:  # Hydra's parse errors come in several types
            print(
                f"ERROR: {arg}: Hydra cannot read this setting; quote its value for Hydra, "
                f"and the whole word for the shell: \"{key}='{value}'\"",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
