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
from gankit import command_line, evaluation, inference, networks, own_data_run, plots, startup
from gankit.field_metrics import field_metrics
from gankit.metrics import generate
from gankit.own_data import Samples, check_enough
from gankit.published import weights as published_weights
from gankit.solvers import array_loader, optimizer
from gankit.trainer import AlternatingTrainer

FIELD_CHECK = ("swd", "value_w1", "spectrum_error")  # each epoch's metrics in the record


def build_models(cfg: DictConfig, channels: int, classes: int):
    batches = (cfg.TRAIN.batch_size, cfg.TRAIN.generator_batch_size)
    processes = dist.get_world_size()
    return networks.own_data_models(
        cfg.MODEL, cfg.DATA.resolution, channels, classes, batches, processes
    )


def generator_inputs(cfg: DictConfig, n: int, seed: int, classes: int, grid: bool = False) -> dict:
    """Generator inputs; conditional: uniform labels, or for the 8x8 grid a class a row."""
    labels = (np.arange(n) // 8) % classes if grid and cfg.MODEL.conditional else None
    return functions.draw_inputs(cfg, n, seed, labels, classes)


def train(cfg: DictConfig):
    data = own_data_run.read_data(cfg)
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
    # of TRAIN.metric_samples samples each epoch; at the end of TRAIN.final_eval_samples,
    # for RGB data also FID and KID (Inception loads now: a network that cannot is said first)
    final_metrics = evaluation_metrics(cfg, data, generator)
    epoch_metric = functions.FieldMetrics(final_metrics["fields"].stats, generator.units)
    epoch_inputs = generator_inputs(cfg, cfg.TRAIN.metric_samples, cfg.seed + 3, classes)
    validator = functions.validator(epoch_inputs, {"fields": epoch_metric}, cfg.EVAL.batch_size)

    # initialize solver: one per network, both running the generator ((noise[, labels]) ->
    # "fake"), one step a call (the critic's n_critic calls)
    steps = dict(epochs=cfg.TRAIN.epochs, iters_per_epoch=1, seed=cfg.seed, device=cfg.device)
    critic_solver = ppsci.solver.Solver(
        model, {"critic": critic_constraint}, cfg.output_dir, critic_optimizer, **steps
    )
    generator_solver = ppsci.solver.Solver(
        model,
        {"generator": generator_constraint},
        cfg.output_dir,
        generator_optimizer,
        log_freq=cfg.log_freq,
        validator=validator,
        eval_with_no_grad=True,
        **steps,
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
            cfg, generator_solver, generator, lambda: epoch_metric.results, FIELD_CHECK
        ),
        plot=plot,
        data=data.array,
    )
    trainer.train()

    # evaluate the trained generator
    count = cfg.TRAIN.final_eval_samples
    evaluate_generator(cfg, generator, final_metrics, count, classes, "paper")


def evaluate(cfg: DictConfig):
    own_data_run.recorded_network(cfg, "EVAL.pretrained_gen_model_path")  # its size, as recorded
    data = own_data_run.read_data(cfg)
    classes = len(data.classes)

    # set model: the paper's ResNets, with the weights' own record of the data's range
    generator, _ = build_models(cfg, data.channels, classes)
    generator, architecture = published_weights.load_setting(
        cfg, "custom", "generator", generator, "EVAL.pretrained_gen_model_path"
    )

    # evaluate: the field metrics (RGB data: also FID and KID) of EVAL.num_samples samples
    metrics = evaluation_metrics(cfg, data, generator)
    evaluate_generator(cfg, generator, metrics, cfg.EVAL.num_samples, classes, architecture)


def evaluation_metrics(cfg: DictConfig, data, generator) -> dict:
    """The field metrics against the data's statistics (computed once, cached), and for RGB
    data FID and KID against its images."""
    stats = own_data_run.reference_stats(cfg, data)
    images = own_data_run.inception_distances(cfg, data, stats)
    fields = {"fields": functions.FieldMetrics(stats, generator.units)}
    return {**fields, **({"images": images} if images else {})}


def evaluate_generator(cfg, generator, metrics: dict, count: int, classes: int, architecture):
    """`metrics` of `count` samples, and the grid of the first 64."""
    # set validator
    inputs = generator_inputs(cfg, count, cfg.seed + 4, classes)
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

    # evaluate
    fields, images = metrics["fields"], metrics.get("images")
    evaluation.field_results(cfg, solver, generator, fields, images, architecture=architecture)


def export(cfg: DictConfig):
    # set model: the network the weights record
    channels, classes = own_data_run.recorded_network(cfg, "INFER.pretrained_model_path")
    generator, _ = build_models(cfg, channels, classes)
    generator = published_weights.load_exported(cfg, "custom", generator)
    generator.in_data_units = True  # the exported model's samples in the data's units

    # initialize solver
    solver = ppsci.solver.Solver(generator, output_dir=cfg.output_dir, device=cfg.device)
    solver.pretrained_model_path = cfg.INFER.pretrained_model_path  # loaded above, strictly

    # export model: the batch norms with their running averages
    input_spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    if cfg.MODEL.conditional:
        input_spec["labels"] = InputSpec([None], "int64", name="labels")
    solver.export([input_spec], cfg.INFER.export_path, with_onnx=cfg.INFER.onnx)


def inference_mode(cfg: DictConfig):
    data = own_data_run.read_data(cfg)
    predictor = inference.GeneratorPredictor(cfg)
    inputs = generator_inputs(cfg, cfg.EVAL.num_samples, cfg.seed + 4, len(data.classes))
    samples = predictor.predict(inputs, cfg.INFER.batch_size)  # in the data's units
    stats = own_data_run.reference_stats(cfg, data)
    evaluation.field_files(cfg, samples, field_metrics(samples, stats))


@command_line.entry  # what Hydra cannot read: one line; paths as a shell gives them
@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_custom.yaml")
@gankit.last_resort.guard  # an unexpected exception: one line, its traceback in the run dir
def main(cfg: DictConfig):
    with startup.run_directory(cfg):  # logs where the files go; cleans up a failed start
        {"train": train, "eval": evaluate, "export": export, "infer": inference_mode}[cfg.mode](cfg)


if __name__ == "__main__":
    main()
