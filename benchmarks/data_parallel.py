"""Training speed of an example on one process and on several CPU processes started by
paddle.distributed.launch, at the same global batch (so the same training).

Each process of an N-process run computes 1/N of every batch, and the processes share
the machine's cores (the examples give each 1/N of them as math threads). On a CPU this
only moves the same cores from threads inside one process to processes: the number
says how the per-step all-reduce of the gradients and the per-process overheads compare
with the threads' own scaling. It is not the speed-up of N GPUs.

    python benchmarks/data_parallel.py --example toy   [--rounds 3] [--iters 40] [--processes 2]
    python benchmarks/data_parallel.py --example mnist [--iters 6]   # generated idx files
"""

import argparse
import os
import statistics
import time

from speed import EXAMPLES, environment_without_cpu_settings, generated_data, run_ours


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", choices=sorted(EXAMPLES), default="toy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--iters", type=int, help="generator iterations per epoch (toy 40, mnist 6, cifar10 2)"
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--data", help="DATA.data_path (default: generated files in the real format)"
    )
    args = parser.parse_args()
    iters = args.iters or {"toy": 40, "mnist": 6, "cifar10": 2}[args.example]
    data = args.data or (generated_data(args.example) if args.example != "toy" else None)
    cores = len(os.sched_getaffinity(0))

    env = environment_without_cpu_settings()
    env["PYTHONWARNINGS"] = "ignore"
    # (processes, threads per process): the automatic choice on 1 and N processes, and one
    # process on one core for reference
    runs = {
        (1, min(cores, 8)): {},
        (1, 1): {"MKL_NUM_THREADS": "1"},
        (args.processes, max(1, min(cores // args.processes, 8))): {},
    }
    times = {key: [] for key in runs}
    start = time.time()
    for _ in range(args.rounds):
        for (processes, threads), extra in runs.items():
            milliseconds = run_ours(args.example, {**env, **extra}, iters, data, processes)
            times[(processes, threads)].append(milliseconds)

    batch = EXAMPLES[args.example]["batch"]
    print(
        f"{args.example}: ms per generator iteration at global batch {batch} (n_critic=5), median "
        f"of {args.rounds} rounds; {cores} cores; {time.time() - start:.0f} s in all\n"
    )
    print(
        "| processes | math threads per process | ms / iteration | all rounds "
        "| speed vs 1 process (automatic) |"
    )
    print("|---|---|---|---|---|")
    base = statistics.median(times[next(iter(runs))])
    for (processes, threads), values in times.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {processes} | {threads} | {median:.1f} | {rounds} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
