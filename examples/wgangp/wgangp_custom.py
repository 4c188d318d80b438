"""WGAN-GP on your own data: a folder of images or an array file, at 32x32 or 64x64.

python wgangp_custom.py DATA.data_path=/path/to/images          # sub-folders: classes
python wgangp_custom.py DATA.data_path=fields.h5 DATA.key=u DATA.resolution=64 TRAIN.minutes=60
python wgangp_custom.py mode=eval DATA.data_path=... EVAL.pretrained_gen_model_path=<run>/model_generator.pdparams
python wgangp_custom.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
python wgangp_custom.py mode=infer DATA.data_path=...
"""

import gankit.environment  # noqa: F401 (first: a usable HOME before paddle makes its caches)

# isort: split
from os import path as osp

import hydra
import numpy as np
import paddle.distributed as dist
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import functions
from gankit import (
    AlternatingTrainer,
    array_loader,
    command_line,
    cpu,
    evaluation,
    inference,
    networks,
    optimizer,
    plots,
    quiet,
    startup,
)
from gankit.errors import UsageError
from gankit.field_cache import cached_reference_stats
from gankit.field_metrics import field_metrics
from gankit.files import read_weights
from gankit.inception import own_images
from gankit.metrics import generate
from gankit.own_data import Samples, check_enough, read
from gankit.parallel import is_main_process
from gankit.published import weights as published_weights

logger = ppsci.utils.logger
FIELD_CHECK = ("swd", "value_w1", "spectrum_error")  # each epoch's metrics in the record


def read_data(cfg: DictConfig):
    """The data of DATA.data_path; MODEL.conditional null becomes: several classes."""
    if not cfg.DATA.data_path:
        raise UsageError(
            "DATA.data_path is not set: give a folder of images (sub-folders: classes) "
            "or an .npy, .npz, .mat or .h5 file of N x H x W or N x C x H x W samples."
        )
    data = read(cfg.DATA.data_path, cfg.DATA.key, cfg.DATA.resolution, cfg.DATA.resize)
    logger.info(data.summary)
    if cfg.MODEL.conditional is None:
        cfg.MODEL.conditional = len(data.classes) > 1
    return data


def build_models(cfg: DictConfig, channels: int, classes: int):
    batches = (cfg.TRAIN.batch_size, cfg.TRAIN.generator_batch_size)
    processes = dist.get_world_size()
    return networks.own_data_models(
        cfg.MODEL, cfg.DATA.resolution, channels, classes, batches, processes
    )


def recorded_network(cfg: DictConfig, setting: str) -> tuple:
    """(channels, classes) of the generator whose weights `setting` names; the settings of its
    size (DATA.resolution, MODEL.noise_dim, MODEL.dim_g, MODEL.conditional) follow them."""
    section, key = setting.split(".")
    sha256 = cfg[section][key.replace("model_path", "sha256")]
    _, state = read_weights(cfg[section][key], setting, sha256)
    try:
        net = networks.fields.recorded(state)
    except ValueError as e:
        raise UsageError(f"{setting}={cfg[section][key]}: {e}") from None
    cfg.DATA.resolution, cfg.MODEL.noise_dim = net["resolution"], net["noise_dim"]
    cfg.MODEL.dim_g, cfg.MODEL.conditional = net["dim_g"], net["classes"] > 0
    return net["channels"], max(net["classes"], 1)


def reference_stats(cfg: DictConfig, data) -> dict:
    """The metrics' statistics of the real data, computed once and cached by its content."""
    real, cache = Samples(data, data_units=True), osp.expanduser(cfg.EVAL.stats_dir)
    how, swd_images = f"resolution {cfg.DATA.resolution}", cfg.EVAL.swd_images
    stats = cached_reference_stats(
        real, cache, raw=data.array, how=how, write=is_main_process(), patch_images=swd_images
    )
    logger.info(f"Reference statistics of the data: {stats['path']}")
    return stats


def inception_distances(cfg: DictConfig, data, stats: dict):
    """FID and KID against the data's images when they are RGB (None otherwise)."""
    real = Samples(data, data_units=True)
    return own_images.maybe(
        cfg, real, str(stats["content_key"]), osp.expanduser(cfg.EVAL.stats_dir)
    )


def generator_inputs(cfg: DictConfig, n: int, seed: int, classes: int, grid: bool = False) -> dict:
    """Generator inputs; conditional: uniform labels, or for the 8x8 grid a class a row."""
    labels = (np.arange(n) // 8) % classes if grid and cfg.MODEL.conditional else None
    return functions.draw_inputs(cfg, n, seed, labels, classes)


def train(cfg: DictConfig):
    data = read_data(cfg)
    check_enough(len(data), cfg.TRAIN.batch_size, f"DATA.data_path={cfg.DATA.data_path}")
    classes = len(data.classes)

    # set model: the paper's ResNets for DATA.resolution; the generator keeps the data's range
    generator, critic = build_models(cfg, data.channels, classes)
    generator.units.set(data.scaling)
    model = networks.GeneratorAndCritic(generator, critic, cfg.MODEL.noise_dim)

    # set constraint: each step reads the next batch of a shuffled pass, mapped to [-1, 1]
    # as it is read, and draws fresh noise; conditional (AC-GAN), fakes for the batch's labels
    acgan_critic = cfg.LOSS.acgan_scale if cfg.MODEL.conditional else 0.0
    acgan_generator = cfg.LOSS.acgan_scale_g if cfg.MODEL.conditional else 0.0
    critic_loss, generator_loss = functions.losses(cfg.LOSS, critic, acgan_critic, acgan_generator)
    critic_constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"real": Samples(data), "labels": data.labels}, cfg.TRAIN.batch_size),
        ppsci.loss.FunctionalLoss(critic_loss),
        output_expr={"real": lambda out: out["real"], "labels": lambda out: out["labels"]},
        name="critic",
    )
    generator_constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"labels": data.labels}, cfg.TRAIN.generator_batch_size),
        ppsci.loss.FunctionalLoss(generator_loss),
        output_expr={"labels": lambda out: out["labels"]},
        name="generator",
    )

    # set optimizer: Adam for each network at TRAIN.learning_rate (the critic at
    # TRAIN.critic_learning_rate if set); with TRAIN.lr_decay both decay to 0
    critic_optimizer = optimizer(cfg.TRAIN, "critic")(critic)
    generator_optimizer = optimizer(cfg.TRAIN, "generator")(generator)

    # set validator: the field metrics (SWD, value W1, spectrum error, beside their floors)
    # of TRAIN.metric_samples samples each epoch, of TRAIN.final_eval_samples at the end
    stats = reference_stats(cfg, data)
    epoch_metric = functions.FieldMetrics(stats, generator.units)
    epoch_inputs = generator_inputs(cfg, cfg.TRAIN.metric_samples, cfg.seed + 3, classes)
    final_metrics = {"fields": functions.FieldMetrics(stats, generator.units)}
    images = inception_distances(cfg, data, stats)  # RGB data: also FID and KID at the end
    final_metrics.update({"images": images} if images else {})
    final_inputs = generator_inputs(cfg, cfg.TRAIN.final_eval_samples, cfg.seed + 4, classes)

    # initialize solver: one per network, both running the generator ((noise[, labels]) ->
    # "fake"), one step a call (the critic's n_critic calls), one to evaluate at the end
    steps = dict(epochs=cfg.TRAIN.epochs, iters_per_epoch=1, seed=cfg.seed, device=cfg.device)
    critic_solver = ppsci.solver.Solver(
        model, {"critic": critic_constraint}, cfg.output_dir, critic_optimizer, **steps
    )
    with quiet():  # ppsci would log the first Solver's set-up lines again
        generator_solver = ppsci.solver.Solver(
            model,
            {"generator": generator_constraint},
            cfg.output_dir,
            generator_optimizer,
            log_freq=cfg.log_freq,
            eval_with_no_grad=True,
            validator=functions.validator(
                epoch_inputs, {"fields": epoch_metric}, cfg.EVAL.batch_size
            ),
            **steps,
        )
        eval_solver = ppsci.solver.Solver(
            generator,
            output_dir=cfg.output_dir,
            log_freq=cfg.log_freq,
            device=cfg.device,
            validator=functions.validator(final_inputs, final_metrics, cfg.EVAL.batch_size),
            eval_with_no_grad=True,
        )

    # train model: per generator iteration, n_critic critic steps and one generator step;
    # after each epoch the field metrics and an 8x8 grid of samples (the first channel)
    grid = generator_inputs(cfg, 64, cfg.seed + 2, classes, grid=True)

    def plot(epoch):
        fakes = generate(generator, grid, len(grid["noise"]), cfg.EVAL.sample_norm)
        path = osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png")
        plots.save_image_grid(plots.to_unit_range(fakes), path, 8)

    trainer = AlternatingTrainer(
        cfg,
        model,
        critic_solver,
        generator_solver,
        critic_loss.meter,
        check=evaluation.epoch_check(
            generator_solver,
            generator,
            lambda: epoch_metric.results,
            FIELD_CHECK,
            cfg.EVAL.sample_norm,
        ),
        plot=plot,
        data=data.array,
    )
    trainer.train()

    # evaluate the trained generator
    fields = final_metrics["fields"]
    evaluation.field_results(cfg, eval_solver, generator, fields, images, architecture="paper")


def evaluate(cfg: DictConfig):
    recorded_network(cfg, "EVAL.pretrained_gen_model_path")  # its size, as the weights say
    data = read_data(cfg)

    # set model: the paper's ResNets, with the weights' own record of the data's range
    generator, _ = build_models(cfg, data.channels, len(data.classes))
    generator, architecture = published_weights.load_setting(
        cfg, "custom", "generator", generator, "EVAL.pretrained_gen_model_path"
    )

    # set validator: the field metrics (RGB data: also FID and KID) of EVAL.num_samples samples
    stats = reference_stats(cfg, data)
    metric, images = (
        functions.FieldMetrics(stats, generator.units),
        inception_distances(cfg, data, stats),
    )
    inputs = generator_inputs(cfg, cfg.EVAL.num_samples, cfg.seed + 4, len(data.classes))
    metrics = {"fields": metric, **({"images": images} if images else {})}
    validator = functions.validator(inputs, metrics, cfg.EVAL.batch_size)

    # initialize solver
    solver = ppsci.solver.Solver(
        generator,
        output_dir=cfg.output_dir,
        log_freq=cfg.log_freq,
        device=cfg.device,
        validator=validator,
        eval_with_no_grad=True,
    )

    # evaluate, and visualize the grid of the first 64 samples
    evaluation.field_results(cfg, solver, generator, metric, images, architecture=architecture)


def export(cfg: DictConfig):
    with_onnx = inference.with_onnx(cfg)  # a missing package stops before any work

    # set model: the network the weights record
    channels, classes = recorded_network(cfg, "INFER.pretrained_model_path")
    generator, _ = build_models(cfg, channels, classes)
    generator, _ = published_weights.load_setting(
        cfg, "custom", "generator", generator, "INFER.pretrained_model_path"
    )
    generator.in_data_units = True  # the exported model's samples in the data's units

    # initialize solver
    solver = ppsci.solver.Solver(generator, output_dir=cfg.output_dir, device=cfg.device)
    solver.pretrained_model_path = cfg.INFER.pretrained_model_path  # loaded above, strictly

    # export model: the batch norms with their running averages
    input_spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    if cfg.MODEL.conditional:
        input_spec["labels"] = InputSpec([None], "int64", name="labels")
    solver.export([input_spec], cfg.INFER.export_path, with_onnx=with_onnx)


def inference_mode(cfg: DictConfig):
    data = read_data(cfg)
    predictor = inference.GeneratorPredictor(cfg)
    inputs = generator_inputs(cfg, cfg.EVAL.num_samples, cfg.seed + 4, len(data.classes))
    samples = predictor.predict(inputs, cfg.INFER.batch_size)  # in the data's units
    evaluation.field_files(cfg, samples, field_metrics(samples, reference_stats(cfg, data)))


@command_line.entry  # what Hydra cannot read: one line; paths as a shell gives them
@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_custom.yaml")
@gankit.last_resort.guard  # an unexpected exception: one line, its traceback in the run dir
def main(cfg: DictConfig):
    with startup.run_directory(cfg):  # logs where the files go; cleans up a failed start
        logger.info(f"CPU math: {cpu.use_fast_cpu_math()}")
        {"train": train, "eval": evaluate, "export": export, "infer": inference_mode}[cfg.mode](cfg)


if __name__ == "__main__":
    main()
