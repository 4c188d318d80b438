"""One-line errors for problems users can act on: a bad setting or file, never a traceback."""

import sys
from typing import Optional

from . import launch_status


class UsageError(SystemExit):
    """A problem with a setting or a file, reported as one line (exit status 2 by default).
    Under the launcher, the other processes end with the same status (launch_status)."""

    def __init__(self, message: str, code: int = 2):
        print(f"ERROR: {message}", file=sys.stderr, flush=True)
        super().__init__(code)
        launch_status.note_failure(code)


def first_line(error: BaseException) -> str:
    """The first line of `error`'s message (its type's name when it has none)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class DownloadError(ValueError):
    """A download that failed (download.py; answers.py: a page, not the file); the message is
    one line naming the URL and what to do, `reason` the few words of what went wrong (for a
    caller that gives its own advice)."""

    def __init__(self, message: str, reason: Optional[str] = None):
        super().__init__(message)
        self.reason = reason or message
