"""Train wgangp_mnist.py on real digits and print its score curve and final metrics.

Uses the 10 000 real MNIST test digits in ../shared/data/mnist (idx format; the MD5s are
checked): the first 8 000 become the training split, the last 2 000 the held-out split
that the metric's classifier is tested on and that gives the real-data ceiling.

    python benchmarks/mnist_quality.py [--epochs 15] [--iters-per-epoch 100] [--out DIR]
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
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def make_split(source, target):
    """8 000 / 2 000 split of the 10 000 test digits, written as idx train / t10k files."""
    for line in open(os.path.join(source, "MD5SUMS")):
        md5, name = line.split()
        assert hashlib.md5(open(os.path.join(source, name), "rb").read()).hexdigest() == md5, name
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
    parser.add_argument("--data", default=SHARED, help="directory with the t10k idx files")
    args = parser.parse_args()

    data_dir = os.path.join(args.out, "data")
    os.makedirs(data_dir, exist_ok=True)
    make_split(args.data, data_dir)
    run_dir = os.path.join(args.out, "run")
    subprocess.run([
        sys.executable, os.path.join(ROOT, "examples", "wgangp", "wgangp_mnist.py"),
        f"DATA.data_path={data_dir}", f"TRAIN.epochs={args.epochs}",
        f"TRAIN.iters_per_epoch={args.iters_per_epoch}", "TRAIN.metric_samples=1000",
        "EVAL.num_samples=2000", "EVAL.classifier_epochs=8", f"hydra.run.dir={run_dir}",
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
