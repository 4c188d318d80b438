"""Inception Score of the 50 000 CIFAR-10 training images, beside the WGAN-GP paper's
real-data row (Table 3: 11.24 +- 0.12): a check that our Inception Score protocol
reproduces the papers' before any generator is compared with them.

    python benchmarks/inception_real.py --data /path/to/cifar-10-python.tar.gz
    python benchmarks/inception_real.py --data ... --weights pt_inception-2015-12-05-6726825d.pth
    python benchmarks/inception_real.py --data ... --inception paddle   # not comparable

The protocol is the CIFAR-10 example's default (EVAL.inception=tf2015): TensorFlow's
2015-12-05 Inception graph with the graph's own preprocessing (TF1 ResizeBilinear 32 ->
299, (x - 128) / 128), batches of 100, 10 splits of consecutive images in the files'
order (data_batch_1 .. data_batch_5). Without --weights, pytorch-fid's weights file is
taken from (or downloaded into) ppsci's download cache and its SHA-256 checked. 50 000
images at 299x299 take hours on a CPU; use a GPU.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "wgangp"))

PAPER_REAL = (11.24, 0.12)  # Gulrajani et al. 2017, Table 3, "Real data"


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=None,
        help="cifar-10-python.tar.gz or its extracted "
        "directory (default: paddle.vision's cached tarball)",
    )
    parser.add_argument(
        "--md5",
        default="c58f30108f718f92721af3b95e74349a",
        help="expected MD5 of the tarball ('none' skips the check)",
    )
    parser.add_argument("--inception", default="tf2015", choices=("tf2015", "paddle"))
    parser.add_argument(
        "--weights",
        default=None,
        help="Inception weights file (default: "
        "pytorch-fid's, from ppsci's download cache, for tf2015)",
    )
    parser.add_argument(
        "--preprocessing",
        default="tf_graph",
        choices=("tf_graph", "pytorch_fid"),
        help="tf2015 only: the TF graph's (the papers') or pytorch-fid's",
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--json", default=None, help="also write the result to this file")
    return parser.parse_args(argv)


def table(result: dict) -> str:
    paper = f"{PAPER_REAL[0]:.2f} ± {PAPER_REAL[1]:.2f}"
    ours = f"{result['inception_score']:.2f} ± {result['inception_score_std']:.2f}"
    return "\n".join(
        [
            "| images | Inception (protocol) | splits | Inception Score | WGAN-GP paper, real data |",
            "|---|---|---|---|---|",
            f"| CIFAR-10 train, {result['num_images']} | {result['inception']} ({result['protocol']}) "
            f"| {result['splits']} | {ours} | {paper} |",
        ]
    )


def main(argv=None) -> dict:
    args = parse(argv)
    from gankit import datasets, metrics
    from gankit.errors import UsageError
    from gankit.inception import networks as inception
    from gankit.inception import weights as inception_weights

    md5 = None if str(args.md5).lower() == "none" else args.md5
    images = datasets.load_cifar10(args.data, md5)["train"][0]  # UsageError: one line, exit 2
    if args.limit:
        images = images[: args.limit]
    try:
        if args.inception == "tf2015":
            net = inception_weights.load_inception("tf2015", args.weights, args.preprocessing)
        else:
            net = inception_weights.load_inception("paddle", args.weights)
    except ValueError as e:
        raise UsageError(f"--inception {args.inception}: {e}") from None
    tic = time.perf_counter()
    _, probs = inception.features_and_probs(net, images.transpose(0, 2, 3, 1), args.batch_size)
    score, score_std = metrics.inception_score(probs, splits=args.splits)
    result = {
        "num_images": int(len(images)),
        "inception": args.inception,
        "protocol": getattr(net, "protocol", args.inception),
        "weights": args.weights,
        "splits": args.splits,
        "batch_size": args.batch_size,
        "inception_score": score,
        "inception_score_std": score_std,
        "paper_real_data": list(PAPER_REAL),
        "seconds": time.perf_counter() - tic,
    }
    print(table(result))
    if args.inception != "tf2015" or args.preprocessing != "tf_graph":
        print("(not the papers' protocol: not comparable with the paper's row)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
