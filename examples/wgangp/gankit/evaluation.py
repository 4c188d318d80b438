"""Evaluating a generator through a ppsci Solver's validator, and what each example writes of it.

The scripts build the validators (functions.validator) and the Solvers that run them; here
is what is done with them: the paper's held-out critic cost during training, the epoch's
check, and each example's final evaluation with its files (samples.npz, metrics.json, the
picture) and log lines. Rank 0 alone writes files.
"""

from os import path as osp
from typing import Callable, Dict, Iterable, Optional

import numpy as np
import ppsci
from ppsci.utils import logger

from . import parallel, plots
from .files import save_json, save_npz
from .metrics import generate, numbers, to_uint8
from .networks import batch_statistics, sampling


def held_out_cost(cfg, generator, validator, metric) -> Callable[[], Dict[str, float]]:
    """The critic's cost on held-out data (the paper's dev_cost) as the trainer's `held_out`:
    a Solver evaluating `validator`, whose `metric` holds the cost; the generator samples as in
    training, its batch norms with each batch's statistics."""
    solver = ppsci.solver.Solver(  # its set-up lines: once a run (solvers.set_up_lines_once)
        generator,
        output_dir=cfg.output_dir,
        device=cfg.device,
        eval_with_no_grad=True,
        validator=validator,
    )

    def measure() -> Dict[str, float]:
        with batch_statistics(generator):
            solver.eval()
        return metric.results

    return measure


def epoch_check(cfg, solver, generator, results: Callable[[], dict], keys: Iterable[str]):
    """The trainer's `check`: `solver`'s validator after an epoch (the generator sampling as
    EVAL.sample_norm says), then the entries `keys` of its metric's `results()` it has."""
    norm = cfg.EVAL.get("sample_norm", "running")

    def check(epoch: int) -> dict:
        with sampling(generator, norm):
            solver.eval(epoch)
        values = results()
        return {k: values[k] for k in keys if values.get(k) is not None}

    return check


def _write(
    output_dir: str, metrics: dict, picture: Optional[Callable[[str], None]], **arrays
) -> None:
    """samples.npz, metrics.json and samples.png (drawn by `picture`, if any), by rank 0."""
    if parallel.is_main_process():
        save_npz(osp.join(output_dir, "samples.npz"), **arrays)
        save_json(metrics, osp.join(output_dir, "metrics.json"))
        if picture is not None:
            picture(osp.join(output_dir, "samples.png"))


def toy_results(cfg, solver, metric, toy, critic=None, title: str = "", **extra) -> dict:
    """The toy example's evaluation: `solver`'s validator (a ToyMetrics `metric`), then its
    points over the critic's contour map (when a critic is given) and their metrics."""
    solver.eval()
    return toy_files(
        cfg, metric.samples, {**metric.results, **extra}, toy, metric.rng, critic, title
    )


def toy_files(cfg, samples, metrics, toy, rng, critic=None, title: str = "") -> dict:
    """samples.npz, metrics.json and the plot of the generated points (inference's too)."""
    _write(
        cfg.output_dir,
        metrics,
        lambda path: plots.plot_toy(path, toy.sample(1000, rng), samples[:1000], critic, title),
        samples=samples,
    )
    shown = {k: v for k, v in metrics.items() if k != "mode_counts"}
    logger.info(f"[{cfg.mode}] {cfg.DATA.mode}: {shown}")
    return metrics


def digit_results(cfg, solver, generator, metrics, accuracy, average=None, **extra) -> dict:
    """The MNIST example's evaluation: `solver`'s validator (metrics["digits"], a
    DigitMetrics), first with the generator's moving average when it has started
    (samples_ema.npz and .png beside), then with the generator itself."""
    if average is not None and average.started:
        with average.applied(), sampling(generator, cfg.EVAL.sample_norm):
            solver.eval()
        extra["generated_ema"] = metrics["digits"].results["generated"]
        if parallel.is_main_process():
            averaged = metrics["digits"].samples
            save_npz(
                osp.join(cfg.output_dir, "samples_ema.npz"),
                samples=averaged.reshape(len(averaged), 784),
            )
            plots.save_image_grid(averaged[:64], osp.join(cfg.output_dir, "samples_ema.png"), 8)
    with sampling(generator, cfg.EVAL.sample_norm):
        solver.eval()
    return digit_files(cfg, metrics["digits"].samples, metrics, accuracy, extra)


def digit_files(cfg, samples, metrics: dict, accuracy: float, extra: Optional[dict] = None):
    """samples.npz, metrics.json and the grid of the first 64 generated digits."""
    digits, critic = metrics["digits"].results, metrics.get("critic")
    results = {
        "num_samples": len(samples),
        "classifier_test_accuracy": accuracy,
        **digits,
        **(extra or {}),
        **({"critic": critic.results} if critic else {}),
    }
    _write(
        cfg.output_dir,
        results,
        lambda path: plots.save_image_grid(samples[:64], path, nrow=8),
        samples=samples.reshape(len(samples), 784),
    )
    for name in ("generated", "generated_ema", "real_test_digits", "real_training_digits"):
        if name not in results:
            continue
        shown = {k: round(v, 4) for k, v in results[name].items() if k != "class_histogram"}
        logger.info(f"[{cfg.mode}] {name}: {shown}")
    return results


def image_results(
    cfg, solver, generator, metrics: dict, inputs: dict, grid: dict, architecture: str, real=None
) -> dict:
    """The CIFAR-10 example's evaluation: the 10x10 grid of `grid`'s inputs, then IS/FID (and
    the critic's scores, `real` its real images and labels) of the validator's samples; when
    no Inception network loads, no samples are generated: samples.npz holds the grid's, the
    critic scores those."""
    # PaddleScience sampled its networks with running batch-norm averages
    norm = "running" if architecture == "paddlescience" else cfg.EVAL.sample_norm
    grid_fakes = generate(generator, grid, 100, norm)
    grid_images = to_uint8(grid_fakes)
    if parallel.is_main_process():  # one writer: under the launcher the ranks share the file
        plots.save_cifar_grid(
            cfg.MODEL.conditional, grid_images, osp.join(cfg.output_dir, "samples.png")
        )
    images, critic = metrics["images"], metrics.get("critic")
    if images.available:
        with sampling(generator, norm):
            solver.eval()
        results, samples = images.results, images.samples
    else:  # the grid's images alone, scored by the critic if it is given
        results, samples, inputs = images.unavailable(), grid_images, grid
        if critic is not None:
            critic(
                {"fake": grid_fakes, **{k: v for k, v in grid.items() if k == "labels"}},
                {k: v[: len(grid_fakes)] for k, v in real.items()},
            )
    results = {**results, "architecture": architecture, "sample_norm": norm}
    if critic is not None:
        results["critic"] = critic.results
    return image_files(cfg, results, samples, inputs.get("labels"))


def image_files(cfg, metrics: dict, images: np.ndarray, labels=None) -> dict:
    """samples.npz and metrics.json; the metrics into the log."""
    metrics = {"num_samples": len(images), **metrics}
    arrays = {"samples": images, **({"labels": labels} if labels is not None else {})}
    _write(cfg.output_dir, metrics, None, **arrays)  # the grid is drawn before the samples
    logger.info(f"[{cfg.mode}] {metrics}")
    return metrics


def field_results(cfg, solver, generator, metric, images=None, **extra) -> dict:
    """The own-data example's evaluation: `solver`'s validator (a FieldMetrics `metric`;
    for RGB data `images`, FID and KID), the generator sampling as EVAL.sample_norm says;
    then its files."""
    with sampling(generator, cfg.EVAL.sample_norm):
        solver.eval()
    if images is not None:
        extra["inception"] = images.results
    return field_files(cfg, metric.samples, metric.results, **extra)


def field_files(cfg, samples: np.ndarray, metrics: dict, **extra) -> dict:
    """samples.npz (in the data's units), metrics.json and the grid of the first 64 samples
    (the first channel unless RGB, each sample's range as the data's range maps it)."""
    results = {"num_samples": len(samples), **metrics, **extra}
    lo = samples.min(axis=(0, 2, 3), keepdims=True)
    span = np.maximum(samples.max(axis=(0, 2, 3), keepdims=True) - lo, 1e-30)
    shown = 2 * (samples[:64] - lo) / span - 1  # the grid: the samples' own range per channel
    _write(
        cfg.output_dir,
        results,
        lambda path: plots.save_image_grid(plots.to_unit_range(shown), path, nrow=8),
        samples=samples.astype(np.float32),
    )
    logger.info(f"[{cfg.mode}] {numbers(results)}")
    return results
