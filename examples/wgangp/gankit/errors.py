"""One-line errors for problems users can act on: a bad setting or file, never a traceback."""

import os
import sys
import time

# Under paddle.distributed.launch every process meets the same bad setting or file, but the
# launcher exits with the status of the first process in rank order that failed, and stops
# the others when one fails: a rank > 0 that ended first would leave rank 0 killed and the
# launcher's status -15 (241). So a rank > 0 waits this long for the launcher to stop it
# once rank 0 has failed too, and ends itself only if rank 0 did not (an error of its own).
RANK_0_GRACE = 15.0  # seconds


class UsageError(SystemExit):
    """A problem with a setting or a file, reported as one line (exit status 2 by default)."""

    def __init__(self, message: str, code: int = 2):
        print(f"ERROR: {message}", file=sys.stderr, flush=True)
        super().__init__(code)
        if int(os.environ.get("PADDLE_TRAINER_ID", 0)) > 0:
            time.sleep(RANK_0_GRACE)  # the launcher's SIGTERM ends it
