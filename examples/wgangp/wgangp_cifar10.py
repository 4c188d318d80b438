"""WGAN-GP on CIFAR-10 with the paper's ResNets (gan_cifar_resnet.py): conditional AC-GAN
by default, unconditional with MODEL.conditional=false; Inception Score and FID.

    python wgangp_cifar10.py DATA.data_path=/path/to/cifar-10-python.tar.gz   # 100k iterations
    python wgangp_cifar10.py mode=eval EVAL.pretrained_gen_model_path=<path or URL>
    python wgangp_cifar10.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
    python wgangp_cifar10.py mode=infer
"""

import os
from os import path as osp

import functions  # noqa: I001 (first: sets Paddle's fast CPU options before paddle loads)
import hydra
import numpy as np
import ppsci
from omegaconf import DictConfig
import paddle.distributed as dist
from paddle.static import InputSpec

import models

logger = ppsci.utils.logger


def build_models(cfg: DictConfig):
    m = cfg.MODEL
    try:  # this process's share of the generator's batch-norm groups
        groups = models.local_bn_groups(m.bn_groups, dist.get_world_size(),
                                        (cfg.TRAIN.batch_size, cfg.TRAIN.generator_batch_size))
    except ValueError as e:
        raise functions.UsageError(f"MODEL.bn_groups: {e}") from None
    if cfg.EVAL.sample_norm not in ("batch", "running"):
        raise functions.UsageError(f"EVAL.sample_norm={cfg.EVAL.sample_norm!r}: use batch or running.")
    return models.cifar_models(m.noise_dim, m.dim_g, m.dim_d, m.conditional, m.layer_norm, groups)


def draw_inputs(cfg: DictConfig, n: int, rng: np.random.Generator, labels=None) -> dict:
    """Generator inputs: noise, and (conditional) labels, uniform unless given."""
    inputs = {"noise": rng.standard_normal((n, cfg.MODEL.noise_dim)).astype("float32")}
    if cfg.MODEL.conditional:
        inputs["labels"] = rng.integers(0, 10, n) if labels is None else labels
    return inputs


def grid_inputs(cfg: DictConfig) -> dict:
    """100 fixed inputs for the 10x10 grid: one row per class when conditional."""
    labels = np.repeat(np.arange(10), 10) if cfg.MODEL.conditional else None
    return draw_inputs(cfg, 100, np.random.default_rng(cfg.seed + 2), labels)


def generate(generator, inputs: dict, batch_size: int, norm: str) -> np.ndarray:
    """uint8 images [N, 32, 32, 3] of the generator on `inputs` (norm: EVAL.sample_norm)."""
    return functions.to_uint8(functions.generate(generator, inputs, batch_size, norm))


def image_metrics(cfg: DictConfig, images: np.ndarray) -> dict:
    """Inception Score (10 splits) and FID against CIFAR-10's training images, or why not."""
    import inception

    try:
        net = inception.load_inception(cfg.EVAL.inception, cfg.EVAL.inception_weights)
    except ValueError as e:
        e = f"EVAL.inception={cfg.EVAL.inception}, EVAL.inception_weights={cfg.EVAL.inception_weights}: {e}"
        logger.warning(f"Inception Score and FID not computed: {e}")
        return {"inception_score": None, "fid": None, "not_computed_because": str(e)}
    features, probs = inception.features_and_probs(net, images, cfg.EVAL.batch_size)
    score, score_std = functions.inception_score(probs, splits=10)
    reference = train_statistics(cfg, net)
    fid = functions.frechet_distance(*functions.feature_statistics(features), *reference)
    return {"inception_score": score, "inception_score_std": score_std, "fid": fid,
            "inception": cfg.EVAL.inception, "inception_weights": cfg.EVAL.inception_weights}


def train_statistics(cfg: DictConfig, net):
    """Inception feature mean and covariance of the training images, computed once and cached."""
    import inception

    path = cfg.EVAL.fid_stats_path or osp.expanduser(
        f"~/.cache/wgangp/cifar10_train_{getattr(net, 'protocol', cfg.EVAL.inception)}.npz")
    if osp.isfile(path):
        stats = np.load(path)
        return stats["mu"], stats["sigma"]
    logger.info(f"Computing CIFAR-10 training-set Inception statistics for FID (cached in {path})")
    images = functions.load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)["train"][0]
    features, _ = inception.features_and_probs(net, images.transpose(0, 2, 3, 1), cfg.EVAL.batch_size)
    mu, sigma = functions.feature_statistics(features)
    os.makedirs(osp.dirname(path), exist_ok=True)
    np.savez(path, mu=mu, sigma=sigma)
    return mu, sigma


def report(cfg: DictConfig, images: np.ndarray, labels=None) -> dict:
    """samples.npz, the 10x10 grid, IS/FID into metrics.json and the log."""
    arrays = {"samples": images, **({"labels": labels} if labels is not None else {})}
    np.savez(osp.join(cfg.output_dir, "samples.npz"), **arrays)
    metrics = {"num_samples": len(images), **image_metrics(cfg, images)}
    functions.save_json(metrics, osp.join(cfg.output_dir, "metrics.json"))
    logger.info(f"[{cfg.mode}] {metrics}")
    return metrics


def save_grid(images: np.ndarray, path: str) -> None:
    functions.save_image_grid(images.transpose(0, 3, 1, 2) / np.float32(255), path, nrow=10)


def train(cfg: DictConfig):
    data = functions.load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)
    images, labels = data["train"]
    generator, critic = build_models(cfg)
    rng = np.random.default_rng(cfg.seed)
    real_batch = functions.ShuffledBatches({"real": images, "labels": labels},
                                            cfg.TRAIN.batch_size, rng)

    def critic_batch():  # fakes are drawn for the real batch's labels, as in the paper
        batch = real_batch()
        inputs = draw_inputs(cfg, len(batch["real"]), rng, batch["labels"])
        return {**inputs, "real": functions.cifar_preprocess(batch["real"], rng)}

    def generator_batch():
        return draw_inputs(cfg, cfg.TRAIN.generator_batch_size, rng)

    scales = (cfg.LOSS.acgan_scale, cfg.LOSS.acgan_scale_g) if cfg.MODEL.conditional else (0, 0)
    critic_constraint, generator_constraint = functions.wgan_gp_constraints(
        critic, cfg.LOSS.lambda_gp, critic_batch, generator_batch, scales)

    critic_optimizer, generator_optimizer = functions.adam_optimizers(cfg.TRAIN, critic, generator)

    fixed = grid_inputs(cfg)
    metric_inputs = draw_inputs(cfg, cfg.TRAIN.metric_samples, np.random.default_rng(cfg.seed + 3))

    def end_of_epoch(epoch: int) -> dict:
        save_grid(generate(generator, fixed, 100, cfg.EVAL.sample_norm), osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"))
        if not cfg.TRAIN.metric_samples:
            return {}
        m = image_metrics(cfg, generate(generator, metric_inputs, cfg.EVAL.batch_size,
                                        cfg.EVAL.sample_norm))
        return {k: m[k] for k in ("inception_score", "fid") if m.get(k) is not None}

    resumable = {"rng": rng, "real_batches": real_batch}  # what checkpoints must hold besides the nets
    functions.train_wgan_gp(cfg, generator, critic, critic_constraint, generator_constraint,
                            critic_optimizer, generator_optimizer, resumable, end_of_epoch)
    if not functions.is_main_process():
        return  # rank 0 evaluates and writes the results
    evaluate_generator(cfg, generator)


def evaluate_generator(cfg: DictConfig, generator) -> dict:
    save_grid(generate(generator, grid_inputs(cfg), 100, cfg.EVAL.sample_norm), osp.join(cfg.output_dir, "samples.png"))
    inputs = draw_inputs(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    images = generate(generator, inputs, cfg.EVAL.batch_size, cfg.EVAL.sample_norm)
    return report(cfg, images, inputs.get("labels"))


def evaluate(cfg: DictConfig):
    generator, critic = build_models(cfg)
    functions.load_weights(generator, cfg.EVAL.pretrained_gen_model_path,
                           "EVAL.pretrained_gen_model_path", cfg.EVAL.pretrained_gen_sha256)
    if cfg.EVAL.pretrained_dis_model_path:  # optional: checked to fit, not needed for metrics
        functions.load_weights(critic, cfg.EVAL.pretrained_dis_model_path,
                               "EVAL.pretrained_dis_model_path", cfg.EVAL.pretrained_dis_sha256)
    evaluate_generator(cfg, generator)


def export(cfg: DictConfig):
    generator, _ = build_models(cfg)
    functions.load_weights(generator, cfg.INFER.pretrained_model_path,
                           "INFER.pretrained_model_path", cfg.INFER.pretrained_sha256)
    spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    if cfg.MODEL.conditional:
        spec["labels"] = InputSpec([None], "int64", name="labels")
    functions.export_generator(generator, spec, cfg.INFER.export_path)


def inference(cfg: DictConfig):
    inputs = draw_inputs(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    images = functions.to_uint8(functions.predict_exported(cfg, inputs))
    grid = functions.to_uint8(functions.predict_exported(cfg, grid_inputs(cfg)))
    save_grid(grid, osp.join(cfg.output_dir, "samples.png"))
    report(cfg, images, inputs.get("labels"))


@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_cifar10.yaml")
def main(cfg: DictConfig):
    {"train": train, "eval": evaluate, "export": export, "infer": inference}[cfg.mode](cfg)


if __name__ == "__main__":
    main()
