"""Train wgangp_mnist.py on real digits and print its score curve and final metrics.

--data is a directory of MNIST idx files (paddle.vision's cache ~/.cache/paddle/dataset/mnist
by default):
- with the official training files (train-images-idx3-ubyte.gz ...), the official split is
  used: 60 000 training digits, 10 000 held-out test digits;
- with the test files alone (t10k-*), the first 8 000 test digits become the training split
  and the last 2 000 the held-out split (the numbers in the docs were measured this way).
A MD5SUMS file beside them ("<md5>  <name>" lines), if present, is checked.

    python benchmarks/mnist_quality.py [--data DIR] [--epochs 15] [--iters-per-epoch 100]
        [--processes N] [--out DIR] [KEY=VALUE ...]   # extra Hydra overrides for wgangp_mnist.py
    python benchmarks/mnist_quality.py --report OUT/run     # the tables of a finished run
    python benchmarks/mnist_quality.py --data DIR --split SPLIT  # only write the 8 000 / 2 000
                                                                 # split, for a run of your own

With --processes N the script runs under paddle.distributed.launch (N CPU processes, the
same global batch), as the README's MNIST quick start does.
"""

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PADDLE_MNIST_CACHE = os.path.expanduser("~/.cache/paddle/dataset/mnist")


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def check_md5sums(source):
    path = os.path.join(source, "MD5SUMS")
    if not os.path.isfile(path):
        return
    for line in open(path):
        md5, name = line.split()
        actual = hashlib.md5(open(os.path.join(source, name), "rb").read()).hexdigest()
        if actual != md5:
            sys.exit(f"ERROR: {os.path.join(source, name)} has MD5 {actual}, not {md5} (MD5SUMS)")


def make_split(source, target):
    """8 000 / 2 000 split of the 10 000 test digits, written as idx train / t10k files."""
    images = np.frombuffer(
        gzip.open(os.path.join(source, "t10k-images-idx3-ubyte.gz")).read(), np.uint8, offset=16
    ).reshape(-1, 28, 28)
    labels = np.frombuffer(
        gzip.open(os.path.join(source, "t10k-labels-idx1-ubyte.gz")).read(), np.uint8, offset=8
    )
    for prefix, part in (("train", slice(0, 8000)), ("t10k", slice(8000, 10000))):
        write_idx(os.path.join(target, f"{prefix}-images-idx3-ubyte.gz"), images[part], 0x803)
        write_idx(os.path.join(target, f"{prefix}-labels-idx1-ubyte.gz"), labels[part], 0x801)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--iters-per-epoch", type=int, default=100)
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="training processes (paddle.distributed.launch when > 1)",
    )
    parser.add_argument(
        "--out", default=os.path.join(tempfile.gettempdir(), "wgangp_mnist_quality")
    )
    parser.add_argument(
        "--data",
        default=PADDLE_MNIST_CACHE,
        help="directory with the MNIST idx files (official set, or t10k alone)",
    )
    parser.add_argument(
        "--report",
        metavar="RUN_DIR",
        help="only print the tables of a finished run (its --out/run directory) and "
        "plot its score curve into it",
    )
    parser.add_argument(
        "--split", metavar="DIR", help="only write the 8 000 / 2 000 split of the t10k files to DIR"
    )
    args, overrides = parser.parse_known_args()
    if args.split:
        check_md5sums(args.data)
        os.makedirs(args.split, exist_ok=True)
        make_split(args.data, args.split)
        return print(f"training and held-out digits written to {args.split}")
    if args.report:
        return report(args.report)

    if not os.path.isfile(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")):
        sys.exit(
            f"ERROR: --data {args.data} has no t10k-images-idx3-ubyte.gz; give the "
            "directory of the MNIST idx files with --data."
        )
    check_md5sums(args.data)
    if os.path.isfile(os.path.join(args.data, "train-images-idx3-ubyte.gz")):
        data_dir = args.data  # the official split
    else:
        data_dir = os.path.join(args.out, "data")
        os.makedirs(data_dir, exist_ok=True)
        make_split(args.data, data_dir)
    run_dir = os.path.join(args.out, "run")
    if os.path.exists(run_dir):
        sys.exit(f"ERROR: {run_dir} exists (an earlier measurement); give another --out.")
    launcher = (
        [
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            str(args.processes),
            "--log_dir",
            os.path.join(args.out, "launch_logs"),
        ]
        if args.processes > 1
        else []
    )
    start = time.time()
    subprocess.run(
        [
            sys.executable,
            *launcher,
            os.path.join(ROOT, "examples", "wgangp", "wgangp_mnist.py"),
            f"DATA.data_path={data_dir}",
            f"TRAIN.epochs={args.epochs}",
            f"TRAIN.iters_per_epoch={args.iters_per_epoch}",
            "TRAIN.metric_samples=1000",
            "EVAL.num_samples=2000",
            "EVAL.classifier_epochs=8",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ],
        check=True,
    )
    report(run_dir, (time.time() - start) / 60)


def report(run_dir, wall_minutes=None):
    """Print the score curve and the final metrics of a finished run; plot the curve into the
    run directory (runs of one day share their parent, so only there is it the run's own)."""
    history = json.load(open(os.path.join(run_dir, "losses.json")))
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    gen, real = metrics["generated"], metrics["real_test_digits"]
    print(
        f"\nscore curve (1 000 samples per epoch; IS: classifier-based, at most 10; real "
        f"held-out digits: IS {real['inception_score']:.2f})\n"
    )
    print(
        "| generator iterations | training time (min) | ms / iteration | IS | IS / real IS "
        "| Frechet distance |"
    )
    print("|---|---|---|---|---|---|")
    for h in history:
        print(
            f"| {h['iteration']} | {h['seconds'] / 60:.1f} | {1000 / h['iters_per_second']:.0f} "
            f"| {h['inception_score']:.2f} | {h['inception_score'] / real['inception_score']:.3f} "
            f"| {h['frechet_distance']:.1f} |"
        )
    print(
        f"\nfinal, {metrics['num_samples']} samples; classifier test accuracy "
        f"{metrics['classifier_test_accuracy']:.4f}\n"
    )
    floor = metrics.get("real_training_digits", {})
    print(
        "| digits | IS | Frechet distance to held-out | KID to held-out | Frechet distance to "
        "training | classes covered |"
    )
    print("|---|---|---|---|---|---|")
    rows = (
        ("generated", gen),
        ("generated, moving average", metrics.get("generated_ema")),
        ("real held-out (IS ceiling)", real),
        ("real training (distance floor)", floor),
    )

    def value(m, key, form):
        return format(m[key], form) if key in m else "-"

    for name, m in rows:
        if not m:
            continue
        print(
            f"| {name} | {m['inception_score']:.2f} ± {m['inception_score_std']:.2f} "
            f"| {value(m, 'frechet_distance', '.2f')} | {value(m, 'kid', '.3f')} "
            f"| {value(m, 'frechet_distance_to_training', '.2f')} | {m['classes_covered']}/10 |"
        )
    in_all = (
        (
            f", {wall_minutes:.1f} min in all (start-up, the metric's classifier and the final "
            "evaluation included)"
        )
        if wall_minutes
        else ""
    )
    if "generated_ema" in metrics:
        print(
            f"\nIS ratio of the moving average / real: "
            f"{metrics['generated_ema']['inception_score'] / real['inception_score']:.3f}"
        )
    print(
        f"\nIS ratio generated / real: {gen['inception_score'] / real['inception_score']:.3f}; "
        f"training {history[-1]['seconds'] / 60:.1f} min{in_all}"
    )
    curve = os.path.join(run_dir, "score_curve.png")
    plot_curve(history, real["inception_score"], curve)
    print(f"sample grid: {os.path.join(run_dir, 'samples.png')}; score curve: {curve}")


def plot_curve(history, real_score, path):
    """IS / real IS against training time and against generator iterations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio = [h["inception_score"] / real_score for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, x, label in (
        (axes[0], [h["seconds"] / 60 for h in history], "training time (min)"),
        (axes[1], [h["iteration"] for h in history], "generator iterations"),
    ):
        ax.plot(x, ratio, "o-", ms=3, label="generated (1 000 samples)")
        ax.axhline(0.85, color="gray", ls="--", lw=1, label="0.85 x real")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("classifier IS / real IS")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
