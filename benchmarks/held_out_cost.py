"""What the held-out critic cost (the paper's dev_cost) costs: MNIST with the paper's networks,
the same short training with TRAIN.dev_freq=0 and with a held-out cost every DEV_FREQ
iterations, alternated; the difference of their training times per evaluation.

    python benchmarks/held_out_cost.py --data <directory with MNIST idx files or mnist.pkl.gz>

Prints a Markdown table: seconds per generator iteration, seconds per held-out evaluation
for each TRAIN.dev_samples, and its share of the training time at the paper's dev_freq=100.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "wgangp", "wgangp_mnist.py")


def train_seconds(
    data: str, iterations: int, dev_freq: int, dev_samples: int, out: str, repeat: int
) -> float:
    """Training seconds of one run (losses.json's "seconds": the loop, without start-up)."""
    run_dir = os.path.join(out, f"dev{dev_freq}_{dev_samples}_{repeat}")  # a new run each time
    subprocess.run(
        [
            sys.executable,
            SCRIPT,
            f"DATA.data_path={data}",
            "TRAIN.epochs=1",
            f"TRAIN.iters_per_epoch={iterations}",
            "TRAIN.eval_during_train=false",
            f"TRAIN.dev_freq={dev_freq}",
            f"TRAIN.dev_samples={dev_samples}",
            "EVAL.num_samples=500",
            "EVAL.classifier_epochs=1",
            f"log_freq={iterations}",
            f"hydra.run.dir={run_dir}",
        ],
        check=True,
        capture_output=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    with open(os.path.join(run_dir, "losses.json")) as f:
        return json.load(f)[-1]["seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--dev-freq", type=int, default=10)
    parser.add_argument("--samples", type=int, nargs="+", default=[10000, 1000])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    evaluations = args.iterations // args.dev_freq
    with tempfile.TemporaryDirectory() as out:
        data = args.data
        if os.path.isdir(data) and not os.path.exists(
            os.path.join(data, "train-images-idx3-ubyte.gz")
        ):
            # the 10 000 test digits alone: they serve as training and held-out digits (timing only)
            data = os.path.join(out, "mnist")
            os.makedirs(data)
            for kind in ("images-idx3", "labels-idx1"):
                for prefix in ("train", "t10k"):
                    os.symlink(
                        os.path.join(os.path.abspath(args.data), f"t10k-{kind}-ubyte.gz"),
                        os.path.join(data, f"{prefix}-{kind}-ubyte.gz"),
                    )
        base, with_dev = [], {n: [] for n in args.samples}
        for repeat in range(args.repeats):  # alternated, so a drifting machine hits both alike
            base.append(train_seconds(data, args.iterations, 0, 1, out, repeat))
            for n in args.samples:
                with_dev[n].append(
                    train_seconds(data, args.iterations, args.dev_freq, n, out, repeat)
                )
    per_iteration = min(base) / args.iterations
    print(
        f"\nMNIST, the paper's networks and batch 50, {args.iterations} generator iterations "
        f"per run, best of {args.repeats} alternated runs\n"
    )
    print(
        "| TRAIN.dev_samples | seconds per held-out evaluation | share of training at dev_freq=100 |"
    )
    print("|---:|---:|---:|")
    for n, seconds in with_dev.items():
        per_evaluation = (min(seconds) - min(base)) / evaluations
        share = per_evaluation / (100 * per_iteration)
        print(f"| {n} | {per_evaluation:.1f} | {share:.1%} |")
    print(f"\n(one generator iteration: {per_iteration:.2f} s)")


if __name__ == "__main__":
    main()
