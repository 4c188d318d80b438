"""Train wgangp_mnist.py on real digits and print its score curve and final metrics.

--data is a directory of MNIST idx files (paddle.vision's cache ~/.cache/paddle/dataset/mnist
by default):
- with the official training files (train-images-idx3-ubyte.gz ...), the official split is
  used: 60 000 training digits, 10 000 held-out test digits;
- with the test files alone (t10k-*), the first 8 000 test digits become the training split
  and the last 2 000 the held-out split (the numbers in the docs were measured this way).
A MD5SUMS file beside them ("<md5>  <name>" lines), if present, is checked.

    python benchmarks/mnist_quality.py [--data DIR] [--epochs 15] [--iters-per-epoch 100]
        [--out DIR] [KEY=VALUE ...]      # extra Hydra overrides for wgangp_mnist.py
"""

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile

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
    images = np.frombuffer(gzip.open(os.path.join(source, "t10k-images-idx3-ubyte.gz")).read(),
                           np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.frombuffer(gzip.open(os.path.join(source, "t10k-labels-idx1-ubyte.gz")).read(),
                           np.uint8, offset=8)
    for prefix, part in (("train", slice(0, 8000)), ("t10k", slice(8000, 10000))):
        write_idx(os.path.join(target, f"{prefix}-images-idx3-ubyte.gz"), images[part], 0x803)
        write_idx(os.path.join(target, f"{prefix}-labels-idx1-ubyte.gz"), labels[part], 0x801)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--iters-per-epoch", type=int, default=100)
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "wgangp_mnist_quality"))
    parser.add_argument("--data", default=PADDLE_MNIST_CACHE,
                        help="directory with the MNIST idx files (official set, or t10k alone)")
    args, overrides = parser.parse_known_args()

    if not os.path.isfile(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")):
        sys.exit(f"ERROR: --data {args.data} has no t10k-images-idx3-ubyte.gz; give the "
                 "directory of the MNIST idx files with --data.")
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
    subprocess.run([
        sys.executable, os.path.join(ROOT, "examples", "wgangp", "wgangp_mnist.py"),
        f"DATA.data_path={data_dir}", f"TRAIN.epochs={args.epochs}",
        f"TRAIN.iters_per_epoch={args.iters_per_epoch}", "TRAIN.metric_samples=1000",
        "EVAL.num_samples=2000", "EVAL.classifier_epochs=8", f"hydra.run.dir={run_dir}",
        *overrides,
    ], check=True)

    history = json.load(open(os.path.join(run_dir, "losses.json")))
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    print("\nscore curve (1 000 samples per epoch; IS: classifier-based, at most 10)\n")
    print("| generator iterations | wall time (min) | ms / iteration | IS | Frechet distance |")
    print("|---|---|---|---|---|")
    for h in history:
        print(f"| {h['iteration']} | {h['seconds'] / 60:.1f} | {1000 / h['iters_per_second']:.0f} "
              f"| {h['inception_score']:.2f} | {h['frechet_distance']:.1f} |")
    gen, real = metrics["generated"], metrics["real_test_digits"]
    print(f"\nfinal, {metrics['num_samples']} samples; classifier test accuracy "
          f"{metrics['classifier_test_accuracy']:.4f}\n")
    print("| digits | IS | Frechet distance | classes covered | class histogram |")
    print("|---|---|---|---|---|")
    for name, m in (("generated", gen), ("real held-out", real)):
        print(f"| {name} | {m['inception_score']:.2f} ± {m['inception_score_std']:.2f} "
              f"| {m['frechet_distance']:.2f} | {m['classes_covered']}/10 | {m['class_histogram']} |")
    print(f"\nIS ratio generated / real: {gen['inception_score'] / real['inception_score']:.3f}; "
          f"sample grid: {os.path.join(run_dir, 'samples.png')}")


if __name__ == "__main__":
    main()
