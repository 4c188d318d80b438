"""A stand-in for an example script under paddle.distributed.launch that meets a bad setting
(gankit.errors.UsageError) in some of its processes:

    python -m paddle.distributed.launch --nproc_per_node 2 tests/rank_errors.py RANKS DELAY [late]

the ranks in RANKS (e.g. 0,1) fail, rank 0 only after DELAY seconds (a slower rank 0); the
others go on working for two minutes. With `late`, rank 0 spends the DELAY before it installs
its signal handler (still importing, say), with Paddle's handler in its place.
"""

import os
import sys
import time

import paddle  # noqa: F401  (as in the scripts: Paddle's signal handlers are installed)

import conftest  # noqa: E402,F401  (puts the example's folder on the path, as for the tests)
from gankit import signals  # noqa: E402
from gankit.errors import UsageError  # noqa: E402

rank = int(os.environ["PADDLE_TRAINER_ID"])
failing, delay = [int(r) for r in sys.argv[1].split(",")], float(sys.argv[2])
late = sys.argv[3:] == ["late"]
if rank == 0 and late:
    time.sleep(delay)
signals.install()  # as the scripts' start-up does first
if rank == 0 and not late:
    time.sleep(delay)
if rank in failing:
    raise UsageError(f"TRAIN.example={rank}: rank {rank} cannot use this.")
time.sleep(120)
