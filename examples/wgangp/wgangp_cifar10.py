"""WGAN-GP on CIFAR-10 with the paper's ResNets (gan_cifar_resnet.py): conditional AC-GAN by
default, unconditional with MODEL.conditional=false; Inception Score and FID.

    python wgangp_cifar10.py DATA.data_path=/path/to/cifar-10-python.tar.gz   # 100k iterations
    python wgangp_cifar10.py mode=eval EVAL.pretrained_gen_model_path=<path or URL>
    python wgangp_cifar10.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
    python wgangp_cifar10.py mode=infer
"""

import gankit.environment  # noqa: F401 (first: a usable HOME before paddle makes its caches)

# isort: split
from os import path as osp

import hydra
import paddle.distributed as dist
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import functions
from gankit import command_line, evaluation, inference, networks, plots, startup
from gankit.datasets import load_cifar10
from gankit.inception.image_metrics import ImageMetrics
from gankit.metrics import generate, to_uint8
from gankit.published import weights as published_weights
from gankit.solvers import array_loader, optimizer
from gankit.trainer import AlternatingTrainer

IMAGE_CHECK = ("inception_score", "fid", "kid")  # each epoch's metrics


def build_models(cfg: DictConfig):  # the generator: this process's batch-norm groups
    batches = (cfg.TRAIN.batch_size, cfg.TRAIN.generator_batch_size)
    return networks.cifar_models_of(cfg.MODEL, batches, dist.get_world_size())


def train(cfg: DictConfig):
    data = load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)
    images, labels = data["train"]
    conditional = cfg.MODEL.conditional

    # set model
    generator, critic = build_models(cfg)
    model = networks.GeneratorAndCritic(generator, critic, cfg.MODEL.noise_dim)

    # set constraint: each step reads the next batch of a shuffled pass and draws fresh
    # noise; conditional (AC-GAN), fakes are drawn for the batch's labels (the critic's
    # step: the real images'), and the critic sees its real images dequantised as in the
    # paper's code
    acgan_critic = cfg.LOSS.acgan_scale if conditional else 0.0
    acgan_generator = cfg.LOSS.acgan_scale_g if conditional else 0.0
    critic_loss, generator_loss = functions.losses(cfg.LOSS, critic, acgan_critic, acgan_generator)
    critic_constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"real": images, "labels": labels}, cfg.TRAIN.batch_size),
        ppsci.loss.FunctionalLoss(critic_loss),
        output_expr={
            "real": lambda out: functions.cifar_real(out["real"]),
            "labels": lambda out: out["labels"],
        },
        name="critic",
    )
    generator_constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"labels": labels}, cfg.TRAIN.generator_batch_size),
        ppsci.loss.FunctionalLoss(generator_loss),
        output_expr={"labels": lambda out: out["labels"]},
        name="generator",
    )

    # set optimizer: Adam for each network at TRAIN.learning_rate (the critic at
    # TRAIN.critic_learning_rate if set); with TRAIN.lr_decay both decay to 0
    critic_optimizer = optimizer(cfg.TRAIN, "critic")(critic)
    generator_optimizer = optimizer(cfg.TRAIN, "generator")(generator)

    # set validator: with TRAIN.eval_during_train, IS and FID of TRAIN.metric_samples images
    # each epoch; at the end of TRAIN.final_eval_samples (Inception loads now: a network that
    # cannot load is said before training)
    epoch_metric = ImageMetrics(cfg) if cfg.TRAIN.eval_during_train else None
    final_metrics = {"images": ImageMetrics(cfg)}
    epoch_inputs = functions.draw_inputs(cfg, cfg.TRAIN.metric_samples, cfg.seed + 3)
    validator = epoch_metric and functions.validator(
        epoch_inputs, {"images": epoch_metric}, cfg.EVAL.batch_size
    )
    # and every TRAIN.dev_freq iterations the critic's cost on TRAIN.dev_samples test images
    # (the paper's dev_cost), against images generated for their labels
    dev_images, dev_labels = (x[: cfg.TRAIN.dev_samples] for x in data["test"])
    dev_labelled = dev_labels if conditional else None
    dev_inputs = functions.draw_inputs(cfg, len(dev_images), cfg.seed + 6, dev_labelled)
    dev_loss = functions.losses(cfg.LOSS, critic, acgan_critic)[0]
    dev_metric = functions.HeldOutCriticCost(dev_loss, cfg.TRAIN.batch_size, functions.cifar_real)
    dev_real = {"real": dev_images, "real_labels": dev_labels}
    dev_validator = functions.validator(
        dev_inputs, {"dev": dev_metric}, cfg.TRAIN.batch_size, dev_real
    )

    # initialize solver: one per network, both running the generator ((noise, labels) ->
    # "fake"), one step a call (the critic's n_critic calls), and one for the held-out cost
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
    held_out_cost = evaluation.held_out_cost(cfg, generator, dev_validator, dev_metric)

    # train model: per generator iteration, n_critic critic steps and one generator step;
    # after each epoch the validator's check (when Inception's network loaded) and the grid
    check = None
    if epoch_metric and epoch_metric.available:
        check = evaluation.epoch_check(
            cfg, generator_solver, generator, lambda: epoch_metric.results, IMAGE_CHECK
        )

    def plot(epoch):
        grid = generate(generator, functions.grid_inputs(cfg), 100, cfg.EVAL.sample_norm)
        path = osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png")
        plots.save_cifar_grid(cfg.MODEL.conditional, to_uint8(grid), path)

    trainer = AlternatingTrainer(
        cfg,
        model,
        critic_solver,
        generator_solver,
        critic_loss.meter,
        check=check,
        plot=plot,
        data=images,
        held_out=held_out_cost,
    )
    trainer.train()

    # evaluate the trained generator
    evaluate_generator(cfg, generator, final_metrics, cfg.TRAIN.final_eval_samples)


def evaluate(cfg: DictConfig):
    # set model: the paper's networks, or PaddleScience's published ones (by the file's keys);
    # the critic's weights are optional: its scores and class predictions
    models = build_models(cfg)
    generator, critic, architecture = published_weights.load_evaluated(cfg, "cifar10", *models)

    # set validator: IS and FID of EVAL.num_samples images; with the critic, its scores of
    # them beside as many test images'
    count = cfg.EVAL.num_samples
    metrics = {"images": ImageMetrics(cfg, paddlescience=True)}
    real = None
    if critic is not None:
        acgan = cfg.MODEL.conditional
        metrics["critic"] = functions.CriticScores(critic, cfg.EVAL.batch_size, acgan=acgan)
        images, labels = load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)["test"]
        real = {"real": images[:count], "real_labels": labels[:count]}

    # evaluate, and visualize the 10x10 grid
    evaluate_generator(cfg, generator, metrics, count, architecture, real)


def evaluate_generator(cfg, generator, metrics: dict, count: int, architecture="paper", real=None):
    """`metrics` of `count` generated images (`real`: real images and labels beside them),
    and the 10x10 grid."""
    # set validator
    inputs = functions.draw_inputs(cfg, count, cfg.seed + 4)
    validator = functions.validator(inputs, metrics, cfg.EVAL.batch_size, real)

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
    grid = functions.grid_inputs(cfg)
    evaluation.image_results(cfg, solver, generator, metrics, inputs, grid, architecture, real)


def export(cfg: DictConfig):
    # set model
    generator = published_weights.load_exported(cfg, "cifar10", build_models(cfg)[0])

    # initialize solver
    solver = ppsci.solver.Solver(generator, output_dir=cfg.output_dir, device=cfg.device)
    solver.pretrained_model_path = cfg.INFER.pretrained_model_path  # loaded above, strictly

    # export model: the batch norms with their running averages
    input_spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    if cfg.MODEL.conditional:
        input_spec["labels"] = InputSpec([None], "int64", name="labels")
    solver.export([input_spec], cfg.INFER.export_path, with_onnx=cfg.INFER.onnx)


def inference_mode(cfg: DictConfig):
    predictor = inference.GeneratorPredictor(cfg)
    grid = functions.grid_inputs(cfg)
    grid_images = to_uint8(predictor.predict(grid, cfg.INFER.batch_size))
    plots.save_cifar_grid(
        cfg.MODEL.conditional, grid_images, osp.join(cfg.output_dir, "samples.png")
    )
    images = ImageMetrics(cfg, paddlescience=True)
    if not images.available:  # no samples for metrics that cannot be computed
        evaluation.image_files(cfg, images.unavailable(), grid_images, grid.get("labels"))
        return
    inputs = functions.draw_inputs(cfg, cfg.EVAL.num_samples, cfg.seed + 4)
    images({"fake": predictor.predict(inputs, cfg.INFER.batch_size)})
    evaluation.image_files(cfg, images.results, images.samples, inputs.get("labels"))


@command_line.entry  # what Hydra cannot read: one line; paths as a shell gives them
@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_cifar10.yaml")
@gankit.last_resort.guard  # an unexpected exception: one line, its traceback in the run dir
def main(cfg: DictConfig):
    with startup.run_directory(cfg):  # logs where the files go; cleans up a failed start
        {"train": train, "eval": evaluate, "export": export, "infer": inference_mode}[cfg.mode](cfg)


if __name__ == "__main__":
    main()
