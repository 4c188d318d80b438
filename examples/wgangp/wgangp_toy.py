"""WGAN-GP on 2-D toy distributions: 8gaussians, 25gaussians, swissroll.

    python wgangp_toy.py                                   # paper settings, 100k iterations
    python wgangp_toy.py TRAIN.epochs=20 TRAIN.iters_per_epoch=100   # a short run
    python wgangp_toy.py mode=eval EVAL.pretrained_gen_model_path=<run>/model_generator.pdparams
    python wgangp_toy.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
    python wgangp_toy.py mode=infer
"""

from os import path as osp

import hydra
import numpy as np
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import cpu
import deploy
import functions
import models
import parallel
import plots
import published_weights
import startup
import training
from errors import UsageError
from weights import save_json

logger = ppsci.utils.logger


def report(cfg: DictConfig, samples: np.ndarray, critic=None, title: str = "",
           extra: dict = None) -> dict:
    """Metrics (and `extra`: the architecture), samples.npz, metrics.json and the plot of N
    generated points."""
    toy = functions.ToyDistribution(cfg.DATA.mode)
    rng = np.random.default_rng(cfg.seed + 1)  # real points independent of training's
    metrics = {**functions.toy_metrics(samples, toy, rng), **(extra or {})}
    np.savez(osp.join(cfg.output_dir, "samples.npz"), samples=samples)
    save_json(metrics, osp.join(cfg.output_dir, "metrics.json"))
    plots.plot_toy(osp.join(cfg.output_dir, "samples.png"), toy.sample(1000, rng),
                   samples[:1000], critic, title)
    shown = {k: v for k, v in metrics.items() if k != "mode_counts"}
    logger.info(f"[{cfg.mode}] {cfg.DATA.mode}: {shown}")
    return metrics


def eval_noise(cfg: DictConfig) -> np.ndarray:  # the same for every mode's evaluation
    return functions.draw_noise(cfg.EVAL.num_samples, cfg.MODEL.noise_dim, cfg.seed + 4)


def train(cfg: DictConfig):
    toy = functions.ToyDistribution(cfg.DATA.mode)
    noise_dim, batch = cfg.MODEL.noise_dim, cfg.TRAIN.batch_size

    # set model
    generator, critic = models.toy_models(noise_dim, cfg.MODEL.hidden_size, cfg.MODEL.num_layers)

    # set constraint: each step draws a fresh batch; both losses call the critic
    rng = np.random.default_rng(cfg.seed)  # the data stream (its state is checkpointed)

    def critic_batch():
        return {"real": toy.sample(batch, rng),
                "noise": functions.draw_noise(batch, noise_dim, rng)}

    def generator_batch():
        return {"noise": functions.draw_noise(batch, noise_dim, rng)}

    critic_constraint = training.StreamConstraint(
        critic_batch,
        ppsci.loss.FunctionalLoss(functions.CriticLoss(critic, cfg.LOSS.lambda_gp)),
        output_expr={"real": lambda out: out["real"]},  # beside the generator's "fake"
        name="critic",
    )
    generator_constraint = training.StreamConstraint(
        generator_batch,
        ppsci.loss.FunctionalLoss(functions.GeneratorLoss(critic)),
        name="generator",
    )

    # set optimizer: Adam for each network; with TRAIN.lr_decay the rate decays linearly to 0
    critic_optimizer = ppsci.optimizer.Adam(
        training.learning_rate(cfg.TRAIN, cfg.TRAIN.iters_per_epoch * cfg.TRAIN.n_critic),
        cfg.TRAIN.beta1, cfg.TRAIN.beta2)(critic)
    generator_optimizer = ppsci.optimizer.Adam(
        training.learning_rate(cfg.TRAIN, cfg.TRAIN.iters_per_epoch),
        cfg.TRAIN.beta1, cfg.TRAIN.beta2)(generator)

    # initialize solver: one per network, both running the generator (noise -> "fake")
    model = training.GeneratorAndCritic(generator, critic)
    critic_solver = ppsci.solver.Solver(
        model, {"critic": critic_constraint}, cfg.output_dir, critic_optimizer,
        epochs=cfg.TRAIN.epochs, iters_per_epoch=cfg.TRAIN.n_critic,  # n_critic steps a call
        seed=cfg.seed, device=cfg.device,
    )
    generator_solver = ppsci.solver.Solver(
        model, {"generator": generator_constraint}, cfg.output_dir, generator_optimizer,
        epochs=cfg.TRAIN.epochs, iters_per_epoch=1, seed=cfg.seed, device=cfg.device,
    )

    # train model: per generator iteration, n_critic critic steps and one generator step
    plot_noise = functions.draw_noise(1000, noise_dim, np.random.default_rng(cfg.seed + 2))
    plot_real = toy.sample(1000, np.random.default_rng(cfg.seed + 3))

    def on_epoch_end(epoch: int) -> dict:
        fake = functions.generate(generator, {"noise": plot_noise}, len(plot_noise))
        path = osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png")
        title = f"{cfg.DATA.mode}, iteration {epoch * cfg.TRAIN.iters_per_epoch}"
        plots.plot_toy(path, plot_real, fake, critic, title)
        metrics = functions.toy_metrics(fake, toy)  # the cheap ones: no W1
        metrics.pop("mode_counts", None)
        metrics.pop("num_samples")
        return metrics

    training.train_alternately(cfg, model, critic_solver, generator_solver,
                               data_state={"rng": rng}, on_epoch_end=on_epoch_end)

    # evaluate the trained generator (rank 0 writes the results)
    if parallel.is_main_process():
        samples = functions.generate(generator, {"noise": eval_noise(cfg)}, cfg.EVAL.batch_size)
        report(cfg, samples, critic, f"{cfg.DATA.mode} after training", {"architecture": "paper"})


def evaluate(cfg: DictConfig):
    functions.ToyDistribution(cfg.DATA.mode)  # a wrong DATA.mode fails before loading
    generator, critic = models.toy_models(cfg.MODEL.noise_dim, cfg.MODEL.hidden_size,
                                          cfg.MODEL.num_layers)
    # the paper's networks, or PaddleScience's published ones (recognised by the file's keys)
    generator, architecture = published_weights.load(
        "toy", "generator", generator, cfg.EVAL.pretrained_gen_model_path,
        "EVAL.pretrained_gen_model_path", cfg.EVAL.pretrained_gen_sha256, cfg.MODEL.architecture)
    if cfg.EVAL.pretrained_dis_model_path:  # optional: draws the critic's contour map
        critic, _ = published_weights.load(
            "toy", "critic", critic, cfg.EVAL.pretrained_dis_model_path,
            "EVAL.pretrained_dis_model_path", cfg.EVAL.pretrained_dis_sha256,
            cfg.MODEL.architecture)
    else:
        critic = None
    samples = functions.generate(generator, {"noise": eval_noise(cfg)}, cfg.EVAL.batch_size)
    report(cfg, samples, critic, f"{cfg.DATA.mode}, {cfg.EVAL.pretrained_gen_model_path}",
           {"architecture": architecture})


def export(cfg: DictConfig):
    generator, _ = models.toy_models(cfg.MODEL.noise_dim, cfg.MODEL.hidden_size,
                                     cfg.MODEL.num_layers)
    generator, _ = published_weights.load(
        "toy", "generator", generator, cfg.INFER.pretrained_model_path,
        "INFER.pretrained_model_path", cfg.INFER.pretrained_sha256, cfg.MODEL.architecture)
    spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    deploy.export_generator(generator, spec, cfg.INFER.export_path)


def inference(cfg: DictConfig):
    functions.ToyDistribution(cfg.DATA.mode)
    samples = deploy.predict_exported(cfg, {"noise": eval_noise(cfg)})
    report(cfg, samples, title=f"{cfg.DATA.mode}, {cfg.INFER.export_path} (inference)")


@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_toy.yaml")
def main(cfg: DictConfig):
    with startup.run_directory(cfg):  # logs where the files go; cleans up a failed start
        logger.info(f"CPU math: {cpu.use_fast_cpu_math()}")
        if cfg.mode == "train":
            train(cfg)
        elif cfg.mode == "eval":
            evaluate(cfg)
        elif cfg.mode == "export":
            export(cfg)
        elif cfg.mode == "infer":
            inference(cfg)
        else:
            raise UsageError(f"mode={cfg.mode!r} is not a mode; use train, eval, export or infer.")

if __name__ == "__main__":
    main()
