"""One-line errors for problems users can act on: a bad setting or file, never a traceback."""

import sys


class UsageError(SystemExit):
    """A problem with a setting or a file, reported as one line (exit status 2 by default)."""

    def __init__(self, message: str, code: int = 2):
        print(f"ERROR: {message}", file=sys.stderr)
        super().__init__(code)
