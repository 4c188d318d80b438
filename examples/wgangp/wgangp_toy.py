"""WGAN-GP on 2-D toy distributions: 8gaussians, 25gaussians, swissroll.

python wgangp_toy.py                                   # paper settings, 100k iterations
python wgangp_toy.py TRAIN.epochs=20 TRAIN.iters_per_epoch=100   # a short run
python wgangp_toy.py mode=eval EVAL.pretrained_gen_model_path=<run>/model_generator.pdparams
python wgangp_toy.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
python wgangp_toy.py mode=infer
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
from gankit.datasets import ToyDistribution
from gankit.metrics import generate, toy_metrics
from gankit.ppsci_adapter import StreamConstraint
from gankit.published import weights as published_weights
from gankit.solvers import optimizer
from gankit.trainer import AlternatingTrainer

TOY_CHECK = ("high_quality_fraction", "modes_covered", "modes_total")  # each epoch's metrics


def build_models(cfg: DictConfig):  # the paper's generator and critic
    return networks.toy_models(cfg.MODEL.noise_dim, cfg.MODEL.hidden_size, cfg.MODEL.num_layers)


def eval_noise(cfg: DictConfig) -> np.ndarray:  # the same for every mode's evaluation
    return functions.draw_noise(cfg.EVAL.num_samples, cfg.MODEL.noise_dim, cfg.seed + 4)


def train(cfg: DictConfig):
    toy = ToyDistribution(cfg.DATA.mode)
    noise_dim = cfg.MODEL.noise_dim

    # set model
    generator, critic = build_models(cfg)
    model = networks.GeneratorAndCritic(generator, critic, noise_dim)

    # set constraint: each step draws a fresh batch (the toy data are endless) or, with
    # DATA.fixed_points (the paper's 25gaussians), reads the next batch of a fixed set
    critic_batch, generator_batch, data_state = functions.toy_batches(cfg, toy)
    critic_loss, generator_loss = functions.losses(cfg.LOSS, critic)  # of LOSS.kind
    critic_constraint = StreamConstraint(
        critic_batch,
        ppsci.loss.FunctionalLoss(critic_loss),
        output_expr={"real": lambda out: out["real"]},  # beside the generator's "fake"
        name="critic",
    )
    generator_constraint = StreamConstraint(
        generator_batch, ppsci.loss.FunctionalLoss(generator_loss), name="generator"
    )

    # set optimizer: TRAIN.optimizer for each network, Adam (wgan-gp) or RMSProp (wgan), at
    # TRAIN.learning_rate (the critic at TRAIN.critic_learning_rate if set); with
    # TRAIN.lr_decay both decay to 0
    critic_optimizer = optimizer(cfg.TRAIN, "critic")(critic)
    generator_optimizer = optimizer(cfg.TRAIN, "generator")(generator)

    # set validator: each epoch the cheap metrics (no W1) of the points its plot shows
    plot_noise = functions.draw_noise(cfg.TRAIN.metric_samples, noise_dim, cfg.seed + 2)
    epoch_metric = functions.ToyMetrics(toy)
    validator = functions.validator(
        {"noise": plot_noise}, {"toy": epoch_metric}, cfg.EVAL.batch_size
    )

    # initialize solver: one per network, both running the generator (noise -> "fake"), one
    # step a call (the critic's n_critic calls)
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

    # train model: per generator iteration, n_critic critic steps (LOSS.kind=wgan: each
    # followed by clipping the critic's weights) and one generator step; after each epoch
    # the validator's cheap metrics and a plot of the points over the critic's contours
    plot_real = toy.sample(1000, np.random.default_rng(cfg.seed + 3))

    def plot(epoch):
        plots.plot_toy(
            osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"),
            plot_real,
            generate(generator, {"noise": plot_noise[:1000]}, 1000),
            critic,
            f"{cfg.DATA.mode}, iteration {epoch * cfg.TRAIN.iters_per_epoch}",
        )

    trainer = AlternatingTrainer(
        cfg,
        model,
        critic_solver,
        generator_solver,
        critic_loss.meter,
        clip=cfg.LOSS.clip if cfg.LOSS.kind == "wgan" else None,
        check=evaluation.epoch_check(
            cfg, generator_solver, generator, lambda: epoch_metric.results, TOY_CHECK
        ),
        plot=plot,
        data_state=data_state,
    )
    trainer.train()

    # evaluate the trained generator
    evaluate_generator(cfg, toy, generator, critic, f"{cfg.DATA.mode} after training", "paper")


def evaluate(cfg: DictConfig):
    toy = ToyDistribution(cfg.DATA.mode)  # a wrong DATA.mode fails before loading

    # set model: the paper's networks, or PaddleScience's published ones (by the file's keys);
    # the critic's weights are optional: they draw its contour map
    models = build_models(cfg)
    generator, critic, architecture = published_weights.load_evaluated(cfg, "toy", *models)

    # evaluate
    title = f"{cfg.DATA.mode}, {cfg.EVAL.pretrained_gen_model_path}"
    evaluate_generator(cfg, toy, generator, critic, title, architecture)


def evaluate_generator(cfg: DictConfig, toy, generator, critic, title: str, architecture: str):
    """All metrics of EVAL.num_samples points, and their plot over the critic's contours."""
    # set validator
    metric = functions.ToyMetrics(toy, np.random.default_rng(cfg.seed + 1))
    validator = functions.validator(
        {"noise": eval_noise(cfg)}, {"toy": metric}, cfg.EVAL.batch_size
    )

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
    evaluation.toy_results(cfg, solver, metric, toy, critic, title, architecture=architecture)


def export(cfg: DictConfig):
    # set model
    generator = published_weights.load_exported(cfg, "toy", build_models(cfg)[0])

    # initialize solver
    solver = ppsci.solver.Solver(generator, output_dir=cfg.output_dir, device=cfg.device)
    solver.pretrained_model_path = cfg.INFER.pretrained_model_path  # loaded above, strictly

    # export model
    input_spec = [{"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}]
    solver.export(input_spec, cfg.INFER.export_path, with_onnx=cfg.INFER.onnx)


def inference_mode(cfg: DictConfig):
    toy = ToyDistribution(cfg.DATA.mode)
    predictor = inference.GeneratorPredictor(cfg)
    samples = predictor.predict({"noise": eval_noise(cfg)}, cfg.INFER.batch_size)
    rng = np.random.default_rng(cfg.seed + 1)
    title = f"{cfg.DATA.mode}, {cfg.INFER.export_path} (inference)"
    evaluation.toy_files(cfg, samples, toy_metrics(samples, toy, rng), toy, rng, None, title)


@command_line.entry  # what Hydra cannot read: one line; paths as a shell gives them
@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_toy.yaml")
@gankit.last_resort.guard  # an unexpected exception: one line, its traceback in the run dir
def main(cfg: DictConfig):
    with startup.run_directory(cfg):  # logs where the files go; cleans up a failed start
        {"train": train, "eval": evaluate, "export": export, "infer": inference_mode}[cfg.mode](cfg)


if __name__ == "__main__":
    main()
