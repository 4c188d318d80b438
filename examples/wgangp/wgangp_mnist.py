"""WGAN-GP on MNIST (the paper's gan_mnist.py), with a classifier-based quality metric.

python wgangp_mnist.py DATA.data_path=/path/to/mnist.pkl.gz      # 200k iterations
python wgangp_mnist.py DATA.data_path=... TRAIN.epochs=4 TRAIN.iters_per_epoch=500
python wgangp_mnist.py mode=eval DATA.data_path=... EVAL.pretrained_gen_model_path=<run>/model_generator.pdparams
python wgangp_mnist.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
python wgangp_mnist.py mode=infer DATA.data_path=...
"""

import gankit.environment  # noqa: F401 (first: a usable HOME before paddle makes its caches)

# isort: split
from os import path as osp

import hydra
import numpy as np
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import functions
from gankit import command_line, evaluation, inference, networks, plots, startup
from gankit.classifier import digit_judge
from gankit.datasets import load_mnist
from gankit.metrics import generate
from gankit.published import weights as published_weights
from gankit.solvers import array_loader, optimizer
from gankit.trainer import AlternatingTrainer

DIGIT_CHECK = ("inception_score", "frechet_distance", "kid")  # each epoch's metrics


def build_models(cfg: DictConfig):  # with MODEL.batch_norm (LOSS.kind=wgan's) batch norms
    return networks.mnist_models(cfg.MODEL.noise_dim, cfg.MODEL.dim, cfg.MODEL.batch_norm)


def eval_noise(cfg: DictConfig) -> np.ndarray:  # the same for every mode's evaluation
    return functions.draw_noise(cfg.EVAL.num_samples, cfg.MODEL.noise_dim, cfg.seed + 4)


def train(cfg: DictConfig):
    data = load_mnist(cfg.DATA.data_path)
    images, labels = data["train"]

    # set model: with MODEL.batch_norm (the paper's LOSS.kind=wgan) batch norms inside
    generator, critic = build_models(cfg)
    model = networks.GeneratorAndCritic(generator, critic, cfg.MODEL.noise_dim)

    # set constraint: each step reads the next batch of a shuffled pass (the generator's
    # step only its size) and draws fresh noise; the losses are LOSS.kind's
    critic_loss, generator_loss = functions.losses(cfg.LOSS, critic)
    critic_constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"real": images[:, None]}, cfg.TRAIN.batch_size),
        ppsci.loss.FunctionalLoss(critic_loss),
        output_expr={"real": lambda out: out["real"]},  # beside the generator's "fake"
        name="critic",
    )
    generator_constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"labels": labels}, cfg.TRAIN.batch_size),
        ppsci.loss.FunctionalLoss(generator_loss),
        name="generator",
    )

    # set optimizer: TRAIN.optimizer for each network, Adam (wgan-gp, dcgan) or RMSProp
    # (wgan), at TRAIN.learning_rate (the critic at TRAIN.critic_learning_rate if set);
    # with TRAIN.lr_decay both decay to 0
    critic_optimizer = optimizer(cfg.TRAIN, "critic")(critic)
    generator_optimizer = optimizer(cfg.TRAIN, "generator")(generator)

    # set validator: each epoch the classifier's IS and Frechet distance of
    # TRAIN.metric_samples digits
    judge = digit_judge(cfg, data)
    epoch_metric = functions.DigitMetrics(judge.classifier, judge.references)
    epoch_noise = functions.draw_noise(cfg.TRAIN.metric_samples, cfg.MODEL.noise_dim, cfg.seed + 3)
    validator = functions.validator(
        {"noise": epoch_noise}, {"digits": epoch_metric}, cfg.EVAL.batch_size
    )
    # and every TRAIN.dev_freq iterations the critic's cost on TRAIN.dev_samples held-out
    # digits (the paper's dev_cost), in batches of the training's
    dev_images = data["dev"][0][: cfg.TRAIN.dev_samples, None]
    dev_noise = functions.draw_noise(len(dev_images), cfg.MODEL.noise_dim, cfg.seed + 6)
    dev_metric = functions.HeldOutCriticCost(
        functions.losses(cfg.LOSS, critic)[0], cfg.TRAIN.batch_size
    )
    dev_validator = functions.validator(
        {"noise": dev_noise}, {"dev": dev_metric}, cfg.TRAIN.batch_size, {"real": dev_images}
    )

    # initialize solver: one per network, both running the generator (noise -> "fake"), one
    # step a call (the critic's n_critic calls), and one for the held-out cost
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

    # train model: per generator iteration, n_critic critic steps (LOSS.kind=wgan: each
    # followed by clipping the critic's weights) and one generator step; after each epoch
    # the validator's check and a grid of 64 digits
    grid_noise = functions.draw_noise(64, cfg.MODEL.noise_dim, cfg.seed + 2)

    def plot(epoch):
        grid = generate(generator, {"noise": grid_noise}, len(grid_noise), cfg.EVAL.sample_norm)
        plots.save_image_grid(grid, osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"), 8)

    check = evaluation.epoch_check(
        cfg, generator_solver, generator, lambda: epoch_metric.results["generated"], DIGIT_CHECK
    )
    trainer = AlternatingTrainer(
        cfg,
        model,
        critic_solver,
        generator_solver,
        critic_loss.meter,
        clip=cfg.LOSS.clip if cfg.LOSS.kind == "wgan" else None,
        check=check,
        plot=plot,
        data=images,
        held_out=held_out_cost,
    )
    trainer.train()

    # evaluate the trained generator, and first its moving average (TRAIN.ema_decay)
    evaluate_generator(cfg, data, judge, generator, average=trainer.average)


def evaluate(cfg: DictConfig):
    data = load_mnist(cfg.DATA.data_path)

    # set model: the paper's networks, or PaddleScience's published ones (by the file's keys);
    # the critic's weights are optional: its scores of real and generated digits
    models = build_models(cfg)
    generator, critic, architecture = published_weights.load_evaluated(cfg, "mnist", *models)

    # evaluate with the metrics' classifier (trained once, or loaded); with MODEL.batch_norm
    # the generator samples as EVAL.sample_norm says
    judge = digit_judge(cfg, data)
    evaluate_generator(cfg, data, judge, generator, critic, architecture=architecture)


def evaluate_generator(
    cfg, data, judge, generator, critic=None, average=None, architecture="paper"
):
    """All metrics of EVAL.num_samples digits (with the moving average's first when it has
    started), and the grid of the first 64."""
    # set validator: the classifier's metrics, with real digits beside them (the Inception
    # Score's ceiling, the distances' floor); with a critic, its scores of real and fakes
    metrics = digit_metrics(cfg, data, judge, critic)
    noise = eval_noise(cfg)
    real = {"real": data["test"][0][: len(noise), None]} if critic is not None else None
    validator = functions.validator({"noise": noise}, metrics, cfg.EVAL.batch_size, real)

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
    evaluation.digit_results(
        cfg, solver, generator, metrics, judge.accuracy, average, architecture=architecture
    )


def digit_metrics(cfg: DictConfig, data: dict, judge: tuple, critic=None) -> dict:
    real = {split: data[split][0][:, None] for split in ("test", "train")}
    metrics = {"digits": functions.DigitMetrics(judge.classifier, judge.references, real)}
    if critic is not None:
        metrics["critic"] = functions.CriticScores(critic, cfg.EVAL.batch_size)
    return metrics


def export(cfg: DictConfig):
    # set model
    generator = published_weights.load_exported(cfg, "mnist", build_models(cfg)[0])

    # initialize solver
    solver = ppsci.solver.Solver(generator, output_dir=cfg.output_dir, device=cfg.device)
    solver.pretrained_model_path = cfg.INFER.pretrained_model_path  # loaded above, strictly

    # export model
    input_spec = [{"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}]
    solver.export(input_spec, cfg.INFER.export_path, with_onnx=cfg.INFER.onnx)


def inference_mode(cfg: DictConfig):
    data = load_mnist(cfg.DATA.data_path)
    predictor = inference.GeneratorPredictor(cfg)
    samples = predictor.predict({"noise": eval_noise(cfg)}, cfg.INFER.batch_size)
    judge = digit_judge(cfg, data)
    metrics = digit_metrics(cfg, data, judge)
    metrics["digits"]({"fake": samples})
    evaluation.digit_files(cfg, samples, metrics, judge.accuracy)


@command_line.entry  # what Hydra cannot read: one line; paths as a shell gives them
@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_mnist.yaml")
@gankit.last_resort.guard  # an unexpected exception: one line, its traceback in the run dir
def main(cfg: DictConfig):
    with startup.run_directory(cfg):  # logs where the files go; cleans up a failed start
        {"train": train, "eval": evaluate, "export": export, "infer": inference_mode}[cfg.mode](cfg)


if __name__ == "__main__":
    main()
