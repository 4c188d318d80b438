"""WGAN-GP on 2-D toy distributions: 8gaussians, 25gaussians, swissroll.

    python wgangp_toy.py                                   # paper settings, 100k iterations
    python wgangp_toy.py TRAIN.epochs=20 TRAIN.iters_per_epoch=100   # a short run
    python wgangp_toy.py mode=eval EVAL.pretrained_gen_model_path=<run>/model_generator.pdparams
    python wgangp_toy.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
    python wgangp_toy.py mode=infer
"""

from os import path as osp

import functions  # noqa: I001 (first: sets Paddle's fast CPU options before paddle loads)
import hydra
import numpy as np
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import models


def build_models(cfg: DictConfig):
    return models.toy_models(cfg.MODEL.noise_dim, cfg.MODEL.hidden_size, cfg.MODEL.num_layers)


def draw_noise(cfg: DictConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, cfg.MODEL.noise_dim)).astype("float32")


def report(cfg: DictConfig, samples: np.ndarray, critic=None, title: str = "") -> dict:
    """Metrics, samples.npz, metrics.json and the plot of N generated points."""
    dist = functions.ToyDistribution(cfg.DATA.mode)
    rng = np.random.default_rng(cfg.seed + 1)  # real points independent of training's
    metrics = functions.toy_metrics(samples, dist, rng)
    np.savez(osp.join(cfg.output_dir, "samples.npz"), samples=samples)
    functions.save_json(metrics, osp.join(cfg.output_dir, "metrics.json"))
    functions.plot_toy(osp.join(cfg.output_dir, "samples.png"), dist.sample(1000, rng),
                       samples[:1000], critic, title)
    shown = {k: v for k, v in metrics.items() if k != "mode_counts"}
    ppsci.utils.logger.info(f"[{cfg.mode}] {cfg.DATA.mode}: {shown}")
    return metrics


def train(cfg: DictConfig):
    dist = functions.ToyDistribution(cfg.DATA.mode)
    generator, critic = build_models(cfg)
    rng = np.random.default_rng(cfg.seed)
    batch = cfg.TRAIN.batch_size

    def critic_batch():
        return {"real": dist.sample(batch, rng), "noise": draw_noise(cfg, batch, rng)}

    def generator_batch():
        return {"noise": draw_noise(cfg, batch, rng)}

    critic_constraint, generator_constraint = functions.wgan_gp_constraints(
        critic, cfg.LOSS.lambda_gp, critic_batch, generator_batch)

    critic_optimizer, generator_optimizer = functions.adam_optimizers(cfg.TRAIN, critic, generator)

    plot_noise = draw_noise(cfg, 1000, np.random.default_rng(cfg.seed + 2))
    plot_real = dist.sample(1000, np.random.default_rng(cfg.seed + 3))

    def plot_epoch(epoch: int) -> dict:
        fake = functions.generate(generator, {"noise": plot_noise}, len(plot_noise))
        path = osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png")
        title = f"{cfg.DATA.mode}, iteration {epoch * cfg.TRAIN.iters_per_epoch}"
        functions.plot_toy(path, plot_real, fake, critic, title)
        metrics = functions.toy_metrics(fake, dist)  # the cheap ones: no W1
        metrics.pop("mode_counts", None)
        metrics.pop("num_samples")
        return metrics

    resumable = {"rng": rng}  # what checkpoints must hold besides the nets and optimizers
    functions.train_wgan_gp(cfg, generator, critic, critic_constraint, generator_constraint,
                            critic_optimizer, generator_optimizer, resumable, plot_epoch)
    if not functions.is_main_process():
        return  # rank 0 evaluates and writes the results
    noise = draw_noise(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    report(cfg, functions.generate(generator, {"noise": noise}, cfg.EVAL.batch_size), critic,
           f"{cfg.DATA.mode} after training")


def evaluate(cfg: DictConfig):
    functions.ToyDistribution(cfg.DATA.mode)  # a wrong DATA.mode fails before loading
    generator, critic = build_models(cfg)
    functions.load_weights(generator, cfg.EVAL.pretrained_gen_model_path,
                           "EVAL.pretrained_gen_model_path", cfg.EVAL.pretrained_gen_sha256)
    if cfg.EVAL.pretrained_dis_model_path:
        functions.load_weights(critic, cfg.EVAL.pretrained_dis_model_path,
                               "EVAL.pretrained_dis_model_path", cfg.EVAL.pretrained_dis_sha256)
    else:
        critic = None
    noise = draw_noise(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    report(cfg, functions.generate(generator, {"noise": noise}, cfg.EVAL.batch_size), critic,
           f"{cfg.DATA.mode}, {cfg.EVAL.pretrained_gen_model_path}")


def export(cfg: DictConfig):
    generator, _ = build_models(cfg)
    functions.load_weights(generator, cfg.INFER.pretrained_model_path,
                           "INFER.pretrained_model_path", cfg.INFER.pretrained_sha256)
    spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    functions.export_generator(generator, spec, cfg.INFER.export_path)


def inference(cfg: DictConfig):
    functions.ToyDistribution(cfg.DATA.mode)
    noise = draw_noise(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    samples = functions.predict_exported(cfg, {"noise": noise})
    report(cfg, samples, title=f"{cfg.DATA.mode}, {cfg.INFER.export_path} (inference)")


@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_toy.yaml")
def main(cfg: DictConfig):
    {"train": train, "eval": evaluate, "export": export, "infer": inference}[cfg.mode](cfg)


if __name__ == "__main__":
    main()
