"""WGAN-GP on 2-D toy distributions: 8gaussians, 25gaussians, swissroll.

python wgangp_toy.py                                   # paper settings, 100k iterations
python wgangp_toy.py TRAIN.epochs=20 TRAIN.iters_per_epoch=100   # a short run
python wgangp_toy.py mode=eval EVAL.pretrained_gen_model_path=<run>/model_generator.pdparams
python wgangp_toy.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
python wgangp_toy.py mode=infer
"""

import gankit.environment  # noqa: F401 (first: a usable HOME before paddle makes its caches)

# isort: split
import sys
from os import path as osp

import hydra
import numpy as np
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import functions
from gankit import (
    AlternatingTrainer,
    StreamConstraint,
    cpu,
    inference,
    networks,
    optimizer,
    parallel,
    plots,
    quiet,
    startup,
)
from gankit.datasets import FixedPoints, ToyDistribution, toy_training_points
from gankit.files import save_json, save_npz
from gankit.metrics import generate, toy_metrics
from gankit.published import weights as published_weights

logger = ppsci.utils.logger


def eval_noise(cfg: DictConfig) -> np.ndarray:  # the same for every mode's evaluation
    return functions.draw_noise(cfg.EVAL.num_samples, cfg.MODEL.noise_dim, cfg.seed + 4)


def report(
    cfg: DictConfig, samples: np.ndarray, metrics: dict, toy, rng, critic=None, title: str = ""
) -> dict:
    """samples.npz, metrics.json and the plot of the generated points."""
    if parallel.is_main_process():
        save_npz(osp.join(cfg.output_dir, "samples.npz"), samples=samples)
        save_json(metrics, osp.join(cfg.output_dir, "metrics.json"))
        plots.plot_toy(
            osp.join(cfg.output_dir, "samples.png"),
            toy.sample(1000, rng),
            samples[:1000],
            critic,
            title,
        )
    shown = {k: v for k, v in metrics.items() if k != "mode_counts"}
    logger.info(f"[{cfg.mode}] {cfg.DATA.mode}: {shown}")
    return metrics


def train(cfg: DictConfig):
    toy = ToyDistribution(cfg.DATA.mode)
    noise_dim, batch = cfg.MODEL.noise_dim, cfg.TRAIN.batch_size

    # set model
    generator, critic = networks.toy_models(noise_dim, cfg.MODEL.hidden_size, cfg.MODEL.num_layers)
    model = networks.GeneratorAndCritic(generator, critic, noise_dim)

    # set constraint: each step draws a fresh batch (the toy data are endless) or, with
    # DATA.fixed_points (the paper's 25gaussians), reads the next batch of a fixed set
    rng = np.random.default_rng(cfg.seed)  # the data stream (its state is checkpointed)
    n_points, fixed = toy_training_points(cfg.DATA), None
    if n_points:
        fixed = FixedPoints(toy.fixed_set(n_points, np.random.default_rng(cfg.seed + 5)), batch)
    data_state = {"rng": rng, **({"fixed_points": fixed} if fixed else {})}

    def critic_batch():
        return {
            "real": fixed.next() if fixed else toy.sample(batch, rng),
            "noise": functions.draw_noise(batch, noise_dim, rng),
        }

    def generator_batch():
        return {"noise": functions.draw_noise(batch, noise_dim, rng)}

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
    critic_optimizer = optimizer(
        cfg.TRAIN, cfg.TRAIN.iters_per_epoch * cfg.TRAIN.n_critic, "critic"
    )(critic)
    generator_optimizer = optimizer(cfg.TRAIN, cfg.TRAIN.iters_per_epoch, "generator")(generator)

    # set validator: each epoch the cheap metrics (no W1) of the points its plot shows; at
    # the end all metrics of EVAL.num_samples points
    plot_noise = functions.draw_noise(
        cfg.TRAIN.metric_samples, noise_dim, np.random.default_rng(cfg.seed + 2)
    )
    epoch_metric = functions.ToyMetrics(toy)
    final_metric = functions.ToyMetrics(toy, np.random.default_rng(cfg.seed + 1))

    # initialize solver: one per network, both running the generator (noise -> "fake"), and
    # one to evaluate the trained generator
    critic_solver = ppsci.solver.Solver(
        model,
        {"critic": critic_constraint},
        cfg.output_dir,
        critic_optimizer,
        epochs=cfg.TRAIN.epochs,
        iters_per_epoch=1,  # one step a call, n_critic calls
        seed=cfg.seed,
        device=cfg.device,
    )
    with quiet():  # ppsci would log the first Solver's set-up lines again
        generator_solver = ppsci.solver.Solver(
            model,
            {"generator": generator_constraint},
            cfg.output_dir,
            generator_optimizer,
            epochs=cfg.TRAIN.epochs,
            iters_per_epoch=1,
            seed=cfg.seed,
            device=cfg.device,
            log_freq=cfg.log_freq,
            validator=functions.validator(
                {"noise": plot_noise}, {"toy": epoch_metric}, cfg.EVAL.batch_size
            ),
            eval_with_no_grad=True,
        )
        eval_solver = ppsci.solver.Solver(
            generator,
            output_dir=cfg.output_dir,
            log_freq=cfg.log_freq,
            device=cfg.device,
            validator=functions.validator(
                {"noise": eval_noise(cfg)}, {"toy": final_metric}, cfg.EVAL.batch_size
            ),
            eval_with_no_grad=True,
        )

    # train model: per generator iteration, n_critic critic steps (LOSS.kind=wgan: each
    # followed by clipping the critic's weights) and one generator step; after each epoch
    # the validator's cheap metrics and a plot of the points over the critic's contours
    plot_real = toy.sample(1000, np.random.default_rng(cfg.seed + 3))

    def check(epoch):
        generator_solver.eval(epoch)
        return {
            k: epoch_metric.results[k]
            for k in ("high_quality_fraction", "modes_covered", "modes_total")
            if k in epoch_metric.results
        }

    def plot(epoch):
        fake = generate(generator, {"noise": plot_noise[:1000]}, 1000)
        plots.plot_toy(
            osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"),
            plot_real,
            fake,
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
        check=check,
        plot=plot,
        data_state=data_state,
    )
    trainer.train()

    # evaluate the trained generator
    eval_solver.eval()
    report(
        cfg,
        final_metric.samples,
        {**final_metric.results, "architecture": "paper"},
        toy,
        final_metric.rng,
        critic,
        f"{cfg.DATA.mode} after training",
    )


def evaluate(cfg: DictConfig):
    ToyDistribution(cfg.DATA.mode)  # a wrong DATA.mode fails before loading

    # set model: the paper's networks, or PaddleScience's published ones (by the file's keys)
    generator, critic = networks.toy_models(
        cfg.MODEL.noise_dim, cfg.MODEL.hidden_size, cfg.MODEL.num_layers
    )
    generator, architecture = published_weights.load_setting(
        cfg, "toy", "generator", generator, "EVAL.pretrained_gen_model_path"
    )
    # optional: draws the critic's contour map
    critic, _ = published_weights.load_setting(
        cfg, "toy", "critic", critic, "EVAL.pretrained_dis_model_path", optional=True
    )

    # set validator: all metrics of EVAL.num_samples points
    toy = ToyDistribution(cfg.DATA.mode)
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
    solver.eval()

    # visualize: the points over the critic's contour map, when it is given
    report(
        cfg,
        metric.samples,
        {**metric.results, "architecture": architecture},
        toy,
        metric.rng,
        critic,
        f"{cfg.DATA.mode}, {cfg.EVAL.pretrained_gen_model_path}",
    )


def export(cfg: DictConfig):
    with_onnx = inference.with_onnx(cfg)  # a missing package stops before any work

    # set model
    generator, _ = networks.toy_models(
        cfg.MODEL.noise_dim, cfg.MODEL.hidden_size, cfg.MODEL.num_layers
    )
    generator, _ = published_weights.load_setting(
        cfg, "toy", "generator", generator, "INFER.pretrained_model_path"
    )

    # initialize solver
    solver = ppsci.solver.Solver(generator, output_dir=cfg.output_dir, device=cfg.device)
    solver.pretrained_model_path = cfg.INFER.pretrained_model_path  # loaded above, strictly

    # export model
    input_spec = [{"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}]
    solver.export(input_spec, cfg.INFER.export_path, with_onnx=with_onnx)


def inference_mode(cfg: DictConfig):
    toy = ToyDistribution(cfg.DATA.mode)
    predictor = inference.GeneratorPredictor(cfg)
    samples = predictor.predict({"noise": eval_noise(cfg)}, cfg.INFER.batch_size)
    rng = np.random.default_rng(cfg.seed + 1)
    metrics = {**toy_metrics(samples, toy, rng)}
    report(
        cfg,
        samples,
        metrics,
        toy,
        rng,
        None,
        f"{cfg.DATA.mode}, {cfg.INFER.export_path} (inference)",
    )


@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_toy.yaml")
@gankit.last_resort.guard  # an unexpected exception: one line, its traceback in the run dir
def main(cfg: DictConfig):
    with startup.run_directory(cfg):  # logs where the files go; cleans up a failed start
        logger.info(f"CPU math: {cpu.use_fast_cpu_math()}")
        {"train": train, "eval": evaluate, "export": export, "infer": inference_mode}[cfg.mode](cfg)


if __name__ == "__main__":
    startup.quote_paths(sys.argv)  # Hydra reads paths with spaces or non-ASCII letters quoted
    main()
