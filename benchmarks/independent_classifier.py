"""Score an MNIST run's samples with a classifier that shares nothing with the example's.

The example's Inception Score uses its own convolutional classifier (models.MnistClassifier,
trained by classifier.train_digit_classifier). A generator could suit that one network's
quirks; this script trains another kind of classifier, a two-layer perceptron written in
numpy (no Paddle, no code of the example), on the same training digits, and reports its
Inception Score of the run's samples.npz beside that of the real held-out digits:

    python benchmarks/independent_classifier.py --data DIR --run RUN_DIR [--epochs 30]

--data is the directory of idx files the run trained on (train-* and t10k-*), RUN_DIR the run
directory holding samples.npz (written by training's final evaluation, mode=eval and
mode=infer). The classifier is trained on the train-* digits only; the t10k-* digits give its
test accuracy and the real IS, the ceiling the ratio is taken against.
"""

import argparse
import gzip
import os
import sys

import numpy as np


def read_idx(path, magic):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    if int.from_bytes(raw[:4], "big") != magic:
        sys.exit(f"ERROR: {path} is not an idx file of magic {magic:#x}")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def split(directory, prefix):
    def find(name):
        for candidate in (name + ".gz", name):
            if os.path.isfile(os.path.join(directory, candidate)):
                return os.path.join(directory, candidate)
        sys.exit(f"ERROR: --data {directory} has no {name}[.gz]")

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"), 0x803).reshape(-1, 784) / 255.0
    return images.astype("float64"), read_idx(find(f"{prefix}-labels-idx1-ubyte"), 0x801)


class Perceptron:
    """784 -> hidden (ReLU) -> 10 softmax, trained by minibatch SGD with momentum."""

    def __init__(self, hidden, seed):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.w1 = rng.normal(0, np.sqrt(2 / 784), (784, hidden))
        self.b1 = np.zeros(hidden)
        self.w2 = rng.normal(0, np.sqrt(1 / hidden), (hidden, 10))
        self.b2 = np.zeros(10)

    def probabilities(self, x):
        hidden = np.maximum(x @ self.w1 + self.b1, 0)
        logits = hidden @ self.w2 + self.b2
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True), hidden

    def train(self, x, y, epochs, rate=0.05, batch=64, decay=1e-4):
        params = [self.w1, self.b1, self.w2, self.b2]
        velocity = [np.zeros_like(p) for p in params]
        for _ in range(epochs):
            order = self.rng.permutation(len(x))
            for i in range(0, len(order), batch):
                index = order[i : i + batch]
                p, hidden = self.probabilities(x[index])
                p[np.arange(len(index)), y[index]] -= 1  # d(cross-entropy)/d(logits)
                p /= len(index)
                d_hidden = (p @ self.w2.T) * (hidden > 0)
                grads = [
                    x[index].T @ d_hidden + decay * self.w1,
                    d_hidden.sum(0),
                    hidden.T @ p + decay * self.w2,
                    p.sum(0),
                ]
                for param, v, g in zip(params, velocity, grads):
                    v *= 0.9
                    v -= rate * g
                    param += v


def inception_score(p, splits=10):
    """exp(mean KL(p(y|x) || p(y))), p(y) over each of `splits` parts; (mean, std)."""
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(0)
        kl = np.sum(part * (np.log(part + 1e-12) - np.log(marginal + 1e-12)), 1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--run", required=True, help="run directory with samples.npz")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    samples_file = os.path.join(args.run, "samples.npz")
    if not os.path.isfile(samples_file):
        sys.exit(f"ERROR: --run {args.run} has no samples.npz; give a finished run's directory")
    train_x, train_y = split(args.data, "train")
    test_x, test_y = split(args.data, "t10k")
    generators = {"generated": samples_file}
    averaged = os.path.join(args.run, "samples_ema.npz")  # TRAIN.ema_decay's moving average
    if os.path.isfile(averaged):
        generators["generated, moving average"] = averaged

    net = Perceptron(args.hidden, args.seed)
    net.train(train_x, train_y, args.epochs)
    test_p = net.probabilities(test_x)[0]
    accuracy = float((test_p.argmax(1) == test_y).mean())
    real, real_std = inception_score(test_p)
    print(
        f"independent classifier: {args.hidden}-unit perceptron (numpy), {args.epochs} epochs "
        f"on {len(train_x)} training digits, test accuracy {accuracy:.4f}\n"
    )
    print("| digits | count | IS (independent classifier) | IS / real IS | classes covered |")
    print("|---|---|---|---|---|")
    print(
        f"| real held-out | {len(test_x)} | {real:.2f} ± {real_std:.2f} | 1 | "
        f"{int((np.bincount(test_p.argmax(1), minlength=10) > 0).sum())}/10 |"
    )
    for name, path in generators.items():
        samples = np.load(path)["samples"].reshape(-1, 784).astype("float64")
        generated_p = net.probabilities(samples)[0]
        generated, generated_std = inception_score(generated_p)
        classes = np.bincount(generated_p.argmax(1), minlength=10)
        print(
            f"| {name} ({path}) | {len(samples)} | {generated:.2f} ± {generated_std:.2f} | "
            f"**{generated / real:.3f}** | {int((classes > 0).sum())}/10 |"
        )


if __name__ == "__main__":
    main()
