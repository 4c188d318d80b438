"""WGAN-GP on CIFAR-10 with the paper's ResNets (gan_cifar_resnet.py): conditional AC-GAN by
default, unconditional with MODEL.conditional=false; Inception Score and FID.

    python wgangp_cifar10.py DATA.data_path=/path/to/cifar-10-python.tar.gz   # 100k iterations
    python wgangp_cifar10.py mode=eval EVAL.pretrained_gen_model_path=<path or URL>
    python wgangp_cifar10.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
    python wgangp_cifar10.py mode=infer
"""

import runtime.environment  # noqa: F401 (first: a usable HOME before paddle makes its caches)
import sys
from os import path as osp

import hydra
import numpy as np
import paddle.distributed as dist
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import functions
import models
import published.weights
from runtime import cpu, inference, parallel, plots, startup
from runtime.errors import UsageError
from runtime.files import save_json, save_npz
from runtime.training import Run, array_loader, epoch_due, frozen, optimizer, quiet

logger = ppsci.utils.logger
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def build_models(cfg: DictConfig):
    m = cfg.MODEL
    try:  # this process's share of the generator's batch-norm groups
        groups = models.local_bn_groups(m.bn_groups, dist.get_world_size(),
                                        (cfg.TRAIN.batch_size, cfg.TRAIN.generator_batch_size))
    except ValueError as e:
        raise UsageError(f"MODEL.bn_groups: {e}") from None
    return models.cifar_models(m.noise_dim, m.dim_g, m.dim_d, m.conditional, m.layer_norm, groups)


def draw_inputs(cfg: DictConfig, n: int, rng: np.random.Generator, labels=None) -> dict:
    """Generator inputs: noise, and (conditional) labels, uniform unless given."""
    inputs = {"noise": functions.draw_noise(n, cfg.MODEL.noise_dim, rng)}
    if cfg.MODEL.conditional:
        inputs["labels"] = rng.integers(0, 10, n) if labels is None else labels
    return inputs


def grid_inputs(cfg: DictConfig) -> dict:
    """100 fixed inputs for the 10x10 grid: one row per class when conditional."""
    labels = np.repeat(np.arange(10), 10) if cfg.MODEL.conditional else None
    return draw_inputs(cfg, 100, np.random.default_rng(cfg.seed + 2), labels)


def build_validator(cfg: DictConfig, inputs: dict, metrics: dict, real=None,
                    batch_size: int = None) -> dict:
    """A validator that generates an image for each of `inputs` (in batches of `batch_size`,
    default EVAL.batch_size) and scores them with `metrics` (name -> metric function);
    `real` (images, labels) ride along as labels."""
    label = {} if real is None else {"real": real[0], "real_labels": real[1]}
    dataloader_cfg = {
        "dataset": {"name": "NamedArrayDataset", "input": inputs, "label": label},
        "batch_size": batch_size or cfg.EVAL.batch_size,  # sample_norm=batch: the norms' too
        "sampler": {"name": "BatchSampler", "shuffle": False, "drop_last": False},
    }
    output_expr = {key: (lambda out, key=key: out[key]) for key in ("fake", *inputs) if key != "noise"}
    validator = ppsci.validate.SupervisedValidator(
        dataloader_cfg,
        ppsci.loss.FunctionalLoss(functions.no_loss),
        output_expr=output_expr,
        metric={name: ppsci.metric.FunctionalMetric(m) for name, m in metrics.items()},
        name="eval",
    )
    return {validator.name: validator}


def save_grid(cfg: DictConfig, images: np.ndarray, path: str) -> None:
    """The 10x10 grid of grid_inputs' images (conditional: a row per class, labelled)."""
    plots.save_image_grid(images.transpose(0, 3, 1, 2) / np.float32(255), path, nrow=10,
                          row_labels=CLASSES if cfg.MODEL.conditional else None)


def evaluate_with(cfg: DictConfig, solver, generator, metrics: dict, inputs: dict,
                  architecture: str, real=None) -> dict:
    """The 10x10 grid, then IS/FID (and the critic's scores) of the validator's samples;
    when no Inception network loads, no samples are generated: samples.npz holds the grid's."""
    # PaddleScience sampled its networks with running batch-norm averages
    norm = "running" if architecture == "paddlescience" else cfg.EVAL.sample_norm
    grid = grid_inputs(cfg)
    grid_fakes = functions.generate(generator, grid, 100, norm)
    grid_images = functions.to_uint8(grid_fakes)
    if parallel.is_main_process():  # one writer: under the launcher the ranks share the file
        save_grid(cfg, grid_images, osp.join(cfg.output_dir, "samples.png"))
    images, critic = metrics["images"], metrics.get("critic")
    if images.available:
        with models.sampling(generator, norm):
            solver.eval()
        results, samples = images.results, images.samples
    else:  # the grid's images alone, scored by the critic if it is given
        results, samples, inputs = images.unavailable(), grid_images, grid
        if critic is not None:
            critic({"fake": grid_fakes, **{k: v for k, v in grid.items() if k == "labels"}},
                   {"real": real[0][:len(grid_fakes)], "real_labels": real[1][:len(grid_fakes)]})
    results = {**results, "architecture": architecture, "sample_norm": norm}
    if critic is not None:
        results["critic"] = critic.results
    return report(cfg, results, samples, inputs.get("labels"))


def report(cfg: DictConfig, metrics: dict, images: np.ndarray, labels=None) -> dict:
    """samples.npz and metrics.json; the metrics into the log."""
    metrics = {"num_samples": len(images), **metrics}
    if parallel.is_main_process():
        arrays = {"samples": images, **({"labels": labels} if labels is not None else {})}
        save_npz(osp.join(cfg.output_dir, "samples.npz"), **arrays)
        save_json(metrics, osp.join(cfg.output_dir, "metrics.json"))
    logger.info(f"[{cfg.mode}] {metrics}")
    return metrics


def train(cfg: DictConfig):
    data = functions.load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)
    images, labels = data["train"]
    conditional = cfg.MODEL.conditional

    # set model
    generator, critic = build_models(cfg)
    model = models.GeneratorAndCritic(generator, critic, cfg.MODEL.noise_dim)

    # set constraint: each step reads the next batch of a shuffled pass and draws fresh
    # noise; conditional (AC-GAN), fakes are drawn for the batch's labels (the critic's
    # step: the real images'), and the critic sees its real images dequantised as in the
    # paper's code
    acgan_critic = cfg.LOSS.acgan_scale if conditional else 0.0
    acgan_generator = cfg.LOSS.acgan_scale_g if conditional else 0.0
    critic_loss, generator_loss = functions.losses(cfg.LOSS, critic, acgan_critic, acgan_generator)
    critic_constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"real": images, "labels": labels}, cfg.TRAIN.batch_size), critic_loss,
        output_expr={"real": lambda out: functions.cifar_real(out["real"]),
                     "labels": lambda out: out["labels"]},
        name="critic",
    )
    generator_constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"labels": labels}, cfg.TRAIN.generator_batch_size), generator_loss,
        output_expr={"labels": lambda out: out["labels"]},
        name="generator",
    )

    # set optimizer: Adam for each network at TRAIN.learning_rate (the critic at
    # TRAIN.critic_learning_rate if set); with TRAIN.lr_decay both decay to 0
    critic_optimizer = optimizer(cfg.TRAIN, cfg.TRAIN.iters_per_epoch * cfg.TRAIN.n_critic,
                                 "critic")(critic)
    generator_optimizer = optimizer(cfg.TRAIN, cfg.TRAIN.iters_per_epoch, "generator")(generator)

    # set validator: with TRAIN.eval_during_train, IS and FID of TRAIN.metric_samples images
    # each epoch; at the end of TRAIN.final_eval_samples
    epoch_metric = functions.ImageMetrics(cfg) if cfg.TRAIN.eval_during_train else None
    epoch_inputs = draw_inputs(cfg, cfg.TRAIN.metric_samples, np.random.default_rng(cfg.seed + 3))
    final_metrics = {"images": functions.ImageMetrics(cfg)}
    final_inputs = draw_inputs(cfg, cfg.TRAIN.final_eval_samples,
                               np.random.default_rng(cfg.seed + 4))
    # and every TRAIN.dev_freq iterations the critic's cost on TRAIN.dev_samples test images
    # (the paper's dev_cost), against images generated for their labels
    dev_images, dev_labels = (x[:cfg.TRAIN.dev_samples] for x in data["test"])
    dev_inputs = draw_inputs(cfg, len(dev_images), np.random.default_rng(cfg.seed + 6),
                             dev_labels if conditional else None)
    dev_metric = functions.HeldOutCriticCost(
        functions.losses(cfg.LOSS, critic, acgan_critic)[0].loss_expr, cfg.TRAIN.batch_size,
        prepare=functions.cifar_real)

    # initialize solver: one per network, both running the generator ((noise, labels) ->
    # "fake"), and one to evaluate the trained generator
    critic_solver = ppsci.solver.Solver(
        model, {"critic": critic_constraint}, cfg.output_dir, critic_optimizer,
        epochs=cfg.TRAIN.epochs, iters_per_epoch=1,  # one step a call, n_critic calls
        seed=cfg.seed, device=cfg.device,
    )
    with quiet():  # ppsci would log the first Solver's set-up lines again
        generator_solver = ppsci.solver.Solver(
            model, {"generator": generator_constraint}, cfg.output_dir, generator_optimizer,
            epochs=cfg.TRAIN.epochs, iters_per_epoch=1, seed=cfg.seed, device=cfg.device,
            log_freq=cfg.log_freq, eval_with_no_grad=True,
            validator=build_validator(cfg, epoch_inputs, {"images": epoch_metric})
            if epoch_metric else None,
        )
        eval_solver = ppsci.solver.Solver(
            generator, output_dir=cfg.output_dir, log_freq=cfg.log_freq, device=cfg.device,
            validator=build_validator(cfg, final_inputs, final_metrics), eval_with_no_grad=True,
        )
        dev_solver = ppsci.solver.Solver(
            generator, output_dir=cfg.output_dir, device=cfg.device, eval_with_no_grad=True,
            validator=build_validator(cfg, dev_inputs, {"dev": dev_metric}, (dev_images, dev_labels),
                                      cfg.TRAIN.batch_size),
        )

    def held_out_cost():  # sampled as in training: batch norms with batch statistics
        with models.batch_statistics(generator):
            dev_solver.eval()
        return dev_metric.results

    # train model: per generator iteration, n_critic critic steps and one generator step
    run = Run(cfg, model, critic_solver, generator_solver,
              loaders={"critic": (critic_constraint, cfg.TRAIN.n_critic),
                       "generator": (generator_constraint, 1)}, data=images,
              held_out=held_out_cost)
    for epoch in run.epochs():
        for _ in run.iterations(epoch):
            for _ in range(cfg.TRAIN.n_critic):
                with frozen(generator):  # the critic step: generated images are constants
                    critic_solver.train_epoch_func(critic_solver, epoch, run.log_freq)
            with frozen(critic):  # the generator step: no gradients for the critic
                generator_solver.train_epoch_func(generator_solver, epoch, run.log_freq)
        scores = {}
        if epoch_due(cfg.TRAIN, epoch) and epoch_metric.available:
            # timed: TRAIN.minutes keeps time for the final evaluation from it
            with run.timed_check(), models.sampling(generator, cfg.EVAL.sample_norm):
                generator_solver.eval(epoch)
            scores = {k: epoch_metric.results[k] for k in ("inception_score", "fid", "kid")
                      if epoch_metric.results.get(k) is not None}
        if parallel.is_main_process():  # the epoch's sample grid
            grid = functions.generate(generator, grid_inputs(cfg), 100, cfg.EVAL.sample_norm)
            save_grid(cfg, functions.to_uint8(grid),
                      osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"))
        run.end_epoch(epoch, scores)
    run.finish()

    # evaluate the trained generator
    evaluate_with(cfg, eval_solver, generator, final_metrics, final_inputs, "paper")


def load_published_or_ours(cfg: DictConfig, role: str, ours, source, setting: str, sha256):
    """published.weights.load, and PaddleScience's networks are conditional (AC-GAN) only."""
    network, architecture = published.weights.load("cifar10", role, ours, source, setting,
                                                    sha256, cfg.MODEL.architecture)
    if architecture == "paddlescience" and not cfg.MODEL.conditional:
        raise UsageError(f"{setting}: PaddleScience's published CIFAR-10 networks are "
                         "conditional; evaluate them with MODEL.conditional=true.")
    return network, architecture


def evaluate(cfg: DictConfig):
    # set model: the paper's networks, or PaddleScience's published ones (by the file's keys)
    generator, critic = build_models(cfg)
    generator, architecture = load_published_or_ours(
        cfg, "generator", generator, cfg.EVAL.pretrained_gen_model_path,
        "EVAL.pretrained_gen_model_path", cfg.EVAL.pretrained_gen_sha256)
    if cfg.EVAL.pretrained_dis_model_path:  # optional: the critic's scores and class head
        critic, _ = load_published_or_ours(
            cfg, "critic", critic, cfg.EVAL.pretrained_dis_model_path,
            "EVAL.pretrained_dis_model_path", cfg.EVAL.pretrained_dis_sha256)
    else:
        critic = None

    # set validator: IS and FID (and the critic's scores) of EVAL.num_samples images
    metrics = {"images": functions.ImageMetrics(cfg, paddlescience=True)}
    inputs = draw_inputs(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    real = None
    if critic is not None:
        metrics["critic"] = functions.CriticScores(critic, cfg.EVAL.batch_size,
                                                   acgan=cfg.MODEL.conditional)
        test_images, test_labels = functions.load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)["test"]
        real = (test_images[:cfg.EVAL.num_samples], test_labels[:cfg.EVAL.num_samples])
    validator = build_validator(cfg, inputs, metrics, real)

    # initialize solver
    solver = ppsci.solver.Solver(generator, output_dir=cfg.output_dir, log_freq=cfg.log_freq,
                                 device=cfg.device, validator=validator, eval_with_no_grad=True)

    # evaluate, and visualize the 10x10 grid
    evaluate_with(cfg, solver, generator, metrics, inputs, architecture, real)


def export(cfg: DictConfig):
    with_onnx = inference.with_onnx(cfg)  # a missing package stops before any work

    # set model
    generator, _ = build_models(cfg)
    generator, _ = load_published_or_ours(
        cfg, "generator", generator, cfg.INFER.pretrained_model_path,
        "INFER.pretrained_model_path", cfg.INFER.pretrained_sha256)

    # initialize solver
    solver = ppsci.solver.Solver(generator, output_dir=cfg.output_dir, device=cfg.device)
    solver.pretrained_model_path = cfg.INFER.pretrained_model_path  # loaded above, strictly

    # export model: the batch norms with their running averages
    input_spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    if cfg.MODEL.conditional:
        input_spec["labels"] = InputSpec([None], "int64", name="labels")
    solver.export([input_spec], cfg.INFER.export_path, with_onnx=with_onnx)


def inference_mode(cfg: DictConfig):
    predictor = inference.GeneratorPredictor(cfg)
    grid = grid_inputs(cfg)
    grid_images = functions.to_uint8(predictor.predict(grid, cfg.INFER.batch_size))
    save_grid(cfg, grid_images, osp.join(cfg.output_dir, "samples.png"))
    images = functions.ImageMetrics(cfg, paddlescience=True)
    if not images.available:  # no samples for metrics that cannot be computed
        report(cfg, images.unavailable(), grid_images, grid.get("labels"))
        return
    inputs = draw_inputs(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    images({"fake": predictor.predict(inputs, cfg.INFER.batch_size)})
    report(cfg, images.results, images.samples, inputs.get("labels"))


@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_cifar10.yaml")
@runtime.last_resort.guard  # an unexpected exception: one line, its traceback in the run directory
def main(cfg: DictConfig):
    with startup.run_directory(cfg):  # logs where the files go; cleans up a failed start
        logger.info(f"CPU math: {cpu.use_fast_cpu_math()}")
        {"train": train, "eval": evaluate, "export": export, "infer": inference_mode}[cfg.mode](cfg)


if __name__ == "__main__":
    startup.quote_paths(sys.argv)  # Hydra reads paths with spaces or non-ASCII letters quoted
    main()
