"""wgangp_custom.py for an hour on data a user would bring, and how good the result is.

Two cases (issue 38):

- mnist: the real MNIST digits as a folder of PNG files, one sub-folder per digit (the first
  8 000 of the 10 000 test digits; the last 2 000 are held out), trained with
  wgangp_custom.py (32x32, AC-GAN over the 10 sub-folders) and scored by the MNIST example's
  classifier (trained on the same 8 000 digits) beside the real held-out digits;
- grf: 2-D Gaussian random fields at 64x64 with the power spectrum P(k) ~ k^-3 (made here,
  4 000 of them in an .npy file), whose spectrum error has an exact target: the floor of two
  halves of the real fields. The curve of the field metrics against minutes, and generated
  fields beside real ones.

    python benchmarks/own_data_hour.py mnist --data ../shared/data/mnist --out DIR [--minutes 60]
    python benchmarks/own_data_hour.py grf --out DIR [--minutes 60]
    python benchmarks/own_data_hour.py report mnist|grf --out DIR   # the tables again

Extra KEY=VALUE arguments go to wgangp_custom.py. Each case runs one process with one math
thread unless MKL_NUM_THREADS says otherwise. The real data's reference statistics are
computed (and timed) before the hour: a user computes them once per data set, after which
they are cached.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "wgangp")
sys.path.insert(0, EXAMPLE)

# the recipes: the paper's ResNets at a width a CPU core trains in an hour
RECIPES = {
    "mnist": (
        "MODEL.dim_g=32 MODEL.dim_d=32 TRAIN.batch_size=32 TRAIN.generator_batch_size=64 "
        "TRAIN.n_critic=2 TRAIN.learning_rate=1e-3 TRAIN.beta2=0.99 TRAIN.iters_per_epoch=200 "
        "TRAIN.metric_samples=500 TRAIN.final_eval_samples=10000 log_freq=50"
    ),
    "grf": (
        "DATA.resolution=64 MODEL.dim_g=8 MODEL.dim_d=8 TRAIN.batch_size=32 "
        "TRAIN.generator_batch_size=64 TRAIN.n_critic=2 TRAIN.learning_rate=1e-3 "
        "TRAIN.beta2=0.99 TRAIN.iters_per_epoch=100 TRAIN.metric_samples=250 "
        "TRAIN.final_eval_samples=1000 log_freq=50"
    ),
}


def mnist_png_folder(source: str, folder: str) -> None:
    """The first 8 000 test digits as PNG files in one sub-folder per digit."""
    from PIL import Image

    images = np.frombuffer(
        gzip.open(os.path.join(source, "t10k-images-idx3-ubyte.gz")).read(), np.uint8, offset=16
    ).reshape(-1, 28, 28)
    labels = np.frombuffer(
        gzip.open(os.path.join(source, "t10k-labels-idx1-ubyte.gz")).read(), np.uint8, offset=8
    )
    for i in range(8000):
        digit_dir = os.path.join(folder, str(labels[i]))
        os.makedirs(digit_dir, exist_ok=True)
        Image.fromarray(images[i]).save(os.path.join(digit_dir, f"{i:05d}.png"))


def gaussian_random_fields(n: int, size: int = 64, slope: float = -3.0, seed: int = 0):
    """n x 1 x size x size fields with P(k) ~ k^slope (k in cycles per side), unit variance."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :]) * size
    amplitude = np.where(k > 0, k, 1.0) ** (slope / 2)
    amplitude[0, 0] = 0.0
    fields = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, 1, size, size))) * amplitude))
    return (fields / fields.std()).astype(np.float32)


def reference_stats(data_path: str, settings: str, stats_dir: str) -> float:
    """Seconds to compute (and cache) the data's reference statistics, as the script does."""
    from omegaconf import OmegaConf

    from gankit import own_data_run

    cfg = OmegaConf.load(os.path.join(EXAMPLE, "conf", "wgangp_custom.yaml"))
    cfg.DATA.data_path, cfg.EVAL.stats_dir = data_path, stats_dir
    for item in settings.split():  # the recipe's data settings
        key, value = item.split("=", 1)
        if key.startswith("DATA."):
            OmegaConf.update(cfg, key, int(value) if value.isdigit() else value)
    tic = time.time()
    own_data_run.reference_stats(cfg, own_data_run.read_data(cfg))
    return time.time() - tic


def train(case: str, data_path: str, out: str, minutes: float, extra: list) -> str:
    stats_dir = os.path.join(out, "stats")
    seconds = reference_stats(data_path, RECIPES[case], stats_dir)
    print(f"reference statistics: {seconds:.0f} s (cached in {stats_dir})", flush=True)
    run_dir = os.path.join(out, "run")
    command = [
        sys.executable,
        os.path.join(EXAMPLE, "wgangp_custom.py"),
        f"DATA.data_path={data_path}",
        *RECIPES[case].split(),
        f"TRAIN.minutes={minutes}",
        f"EVAL.stats_dir={stats_dir}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    print(" ".join(command), flush=True)
    env = dict(os.environ, MKL_NUM_THREADS=os.environ.get("MKL_NUM_THREADS", "1"))
    tic = time.time()
    subprocess.run(command, check=True, env=env)
    print(f"the run took {(time.time() - tic) / 60:.1f} minutes", flush=True)
    return run_dir


def curve(run_dir: str) -> list:
    """(minutes, iteration, swd, value_w1, spectrum_error) of each epoch's check."""
    with open(os.path.join(run_dir, "losses.json")) as f:
        history = json.load(f)
    return [
        (
            r["seconds"] / 60,
            r["iteration"],
            r.get("swd"),
            r.get("value_w1"),
            r.get("spectrum_error"),
        )
        for r in history
    ]


def print_curve(run_dir: str) -> None:
    print("| minutes | iteration | SWD x1e3 | value W1 | spectrum error |")
    print("|---|---|---|---|---|")
    for m, it, swd, w1, spec in curve(run_dir):
        if swd is not None:
            print(f"| {m:.1f} | {it} | {swd:.2f} | {w1:.4f} | {spec:.3f} |")


def field_table(run_dir: str) -> None:
    with open(os.path.join(run_dir, "metrics.json")) as f:
        m = json.load(f)
    print(f"\nfinal, {m['num_samples']} samples (floor: two halves of the real data):")
    print("| measure | generated | real floor |")
    print("|---|---|---|")
    for name in ("swd", "value_w1", "spectrum_error"):
        print(f"| {name} | {m[name]:.4f} | {m[name + '_floor']:.4f} |")


def mnist_scores(run_dir: str, source: str) -> None:
    """The MNIST example's classifier metrics of the run's samples (32x32 -> 28x28 by area)."""
    from omegaconf import OmegaConf
    from PIL import Image

    import functions
    from gankit.classifier import digit_references, train_digit_classifier
    from gankit.datasets import load_mnist

    split = os.path.join(os.path.dirname(run_dir), "split")
    if not os.path.isdir(split):
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        from mnist_quality import make_split

        os.makedirs(split)
        make_split(source, split)
    data = load_mnist(split)
    mnist_cfg = OmegaConf.load(os.path.join(EXAMPLE, "conf", "wgangp_mnist.yaml"))
    classifier, _ = train_digit_classifier(
        data, mnist_cfg.EVAL.classifier_epochs, mnist_cfg.EVAL.classifier_seed
    )
    with np.load(os.path.join(run_dir, "samples.npz")) as f:
        samples = f["samples"][:, 0]  # in the PNGs' units, 0..255
    digits = np.stack(
        [
            np.asarray(
                Image.fromarray(np.clip(s, 0, 255).astype(np.float32), mode="F").resize(
                    (28, 28), Image.BOX
                )
            )
            for s in samples
        ]
    ) / np.float32(255)
    references = digit_references(classifier, data, len(samples))
    real = {name: data[name][0][:, None] for name in ("test", "train")}
    metric = functions.DigitMetrics(classifier, references, real)
    metric({"fake": digits[:, None].astype(np.float32)})
    print(f"\nthe MNIST example's classifier on {len(samples)} samples:")
    print("| digits | classifier IS | Frechet distance to held-out | KID to held-out | classes |")
    print("|---|---|---|---|---|")
    for name, r in metric.results.items():
        print(
            f"| {name} | {r['inception_score']:.2f} | {r.get('frechet_distance', float('nan')):.2f} "
            f"| {r.get('kid', float('nan')):.3f} | {r.get('classes_covered', '-')} |"
        )


def figures(run_dir: str, real: np.ndarray) -> None:
    """metric_curve.png (the metrics against minutes) and fields.png (8 generated fields above
    8 real ones, each on the real fields' colour scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in curve(run_dir) if p[2] is not None]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    with open(os.path.join(run_dir, "metrics.json")) as f:
        final = json.load(f)
    for ax, i, name in zip(axes, (2, 3, 4), ("swd", "value_w1", "spectrum_error")):
        ax.plot([p[0] for p in points], [p[i] for p in points], "o-", label="generated")
        ax.axhline(final[name + "_floor"], color="grey", ls="--", label="real floor")
        ax.set_xlabel("minutes")
        ax.set_title(name)
        ax.set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "metric_curve.png"), dpi=100)
    with np.load(os.path.join(run_dir, "samples.npz")) as f:
        fake = f["samples"][:8, 0]
    lo, hi = np.percentile(real, [0.5, 99.5])
    fig, axes = plt.subplots(2, 8, figsize=(12, 3.3))
    for j in range(8):
        for row, images in enumerate((fake, real[:8, 0])):
            axes[row, j].imshow(images[j], cmap="RdBu_r", vmin=lo, vmax=hi)
            axes[row, j].axis("off")
    axes[0, 0].set_title("generated", loc="left")
    axes[1, 0].set_title("real", loc="left")
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "fields.png"), dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=("mnist", "grf", "report"))
    parser.add_argument("which", nargs="?", choices=("mnist", "grf"))
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=60.0)
    args, extra = parser.parse_known_args()
    case = args.which if args.case == "report" else args.case
    os.makedirs(args.out, exist_ok=True)
    if case == "mnist":
        folder = os.path.join(args.out, "mnist_png")
        if args.case != "report":
            mnist_png_folder(args.data, folder)
            train("mnist", folder, args.out, args.minutes, extra)
        run_dir = os.path.join(args.out, "run")
        print_curve(run_dir)
        field_table(run_dir)
        mnist_scores(run_dir, args.data)
    else:
        path = os.path.join(args.out, "grf64.npy")
        if args.case != "report":
            np.save(path, gaussian_random_fields(4000))
            train("grf", path, args.out, args.minutes, extra)
        run_dir = os.path.join(args.out, "run")
        print_curve(run_dir)
        field_table(run_dir)
        figures(run_dir, np.load(path, mmap_mode="r"))


if __name__ == "__main__":
    main()
