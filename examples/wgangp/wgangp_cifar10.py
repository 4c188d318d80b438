"""WGAN-GP on CIFAR-10 with the paper's ResNets (gan_cifar_resnet.py): conditional AC-GAN
by default, unconditional with MODEL.conditional=false; Inception Score and FID.

    python wgangp_cifar10.py DATA.data_path=/path/to/cifar-10-python.tar.gz   # 100k iterations
    python wgangp_cifar10.py mode=eval EVAL.pretrained_gen_model_path=<path or URL>
    python wgangp_cifar10.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
    python wgangp_cifar10.py mode=infer
"""

import os
from os import path as osp

import hydra
import numpy as np
import ppsci
import paddle.distributed as dist
from omegaconf import DictConfig
from paddle.static import InputSpec

import cpu
import deploy
import functions
import models
import parallel
import plots
import startup
import training
from errors import UsageError
from weights import load_weights, save_json

logger = ppsci.utils.logger


def build_models(cfg: DictConfig):
    m = cfg.MODEL
    try:  # this process's share of the generator's batch-norm groups
        groups = models.local_bn_groups(m.bn_groups, dist.get_world_size(),
                                        (cfg.TRAIN.batch_size, cfg.TRAIN.generator_batch_size))
    except ValueError as e:
        raise UsageError(f"MODEL.bn_groups: {e}") from None
    if cfg.EVAL.sample_norm not in ("batch", "running"):
        raise UsageError(f"EVAL.sample_norm={cfg.EVAL.sample_norm!r}: use batch or running.")
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


def generate_images(generator, inputs: dict, batch_size: int, norm: str) -> np.ndarray:
    """uint8 images [N, 32, 32, 3] of the generator on `inputs` (norm: EVAL.sample_norm)."""
    return functions.to_uint8(functions.generate(generator, inputs, batch_size, norm))


class ImageScorer:
    """Inception Score (10 splits) and FID against CIFAR-10's training images.

    The Inception network is loaded first: when it cannot be (offline, no weights),
    `why_not` says why, and no samples are generated for these metrics.
    """

    def __init__(self, cfg: DictConfig):
        import inception

        self.cfg, self.net, self.why_not = cfg, None, None
        try:
            self.net = inception.load_inception(cfg.EVAL.inception, cfg.EVAL.inception_weights)
        except ValueError as e:
            self.why_not = (f"EVAL.inception={cfg.EVAL.inception}, "
                            f"EVAL.inception_weights={cfg.EVAL.inception_weights}: {e}")
            logger.warning(f"Inception Score and FID not computed: {self.why_not}")

    def __call__(self, images: np.ndarray) -> dict:
        import inception

        if self.net is None:
            return {"inception_score": None, "fid": None, "not_computed_because": self.why_not}
        features, probs = inception.features_and_probs(self.net, images, self.cfg.EVAL.batch_size)
        score, score_std = functions.inception_score(probs, splits=10)
        reference = train_statistics(self.cfg, self.net)
        fid = functions.frechet_distance(*functions.feature_statistics(features), *reference)
        return {"inception_score": score, "inception_score_std": score_std, "fid": fid,
                "inception": self.cfg.EVAL.inception,
                "inception_weights": self.cfg.EVAL.inception_weights}


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


def report(cfg: DictConfig, metrics: dict, images: np.ndarray, labels=None) -> dict:
    """samples.npz and metrics.json; the metrics into the log."""
    arrays = {"samples": images, **({"labels": labels} if labels is not None else {})}
    np.savez(osp.join(cfg.output_dir, "samples.npz"), **arrays)
    metrics = {"num_samples": len(images), **metrics}
    save_json(metrics, osp.join(cfg.output_dir, "metrics.json"))
    logger.info(f"[{cfg.mode}] {metrics}")
    return metrics


CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def save_grid(cfg: DictConfig, images: np.ndarray, path: str) -> None:
    """The 10x10 grid of grid_inputs; conditional, each row is labelled with its class."""
    plots.save_image_grid(images.transpose(0, 3, 1, 2) / np.float32(255), path, nrow=10,
                          row_labels=CLASSES if cfg.MODEL.conditional else None)


def train(cfg: DictConfig):
    images, labels = functions.load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)["train"]
    conditional = cfg.MODEL.conditional

    # set model
    generator, critic = build_models(cfg)

    # set constraint: each step draws the next real batch of a shuffled pass and fresh
    # noise; conditional (AC-GAN), fakes are drawn for the real batch's labels, as in the paper
    rng = np.random.default_rng(cfg.seed)  # the data stream (its state is checkpointed)
    real_batch = functions.ShuffledBatches({"real": images, "labels": labels},
                                           cfg.TRAIN.batch_size, rng)

    def critic_batch():
        batch = real_batch()
        inputs = draw_inputs(cfg, len(batch["real"]), rng, batch["labels"])
        return {**inputs, "real": functions.cifar_preprocess(batch["real"], rng)}

    def generator_batch():
        return draw_inputs(cfg, cfg.TRAIN.generator_batch_size, rng)

    acgan_critic = cfg.LOSS.acgan_scale if conditional else 0.0
    acgan_generator = cfg.LOSS.acgan_scale_g if conditional else 0.0
    passed_on = ("real", "labels") if acgan_critic else ("real",)  # beside the generator's "fake"
    critic_constraint = training.StreamConstraint(
        critic_batch,
        ppsci.loss.FunctionalLoss(
            functions.CriticLoss(critic, cfg.LOSS.lambda_gp, acgan_scale=acgan_critic)),
        output_expr={key: (lambda out, key=key: out[key]) for key in passed_on},
        name="critic",
    )
    generator_constraint = training.StreamConstraint(
        generator_batch,
        ppsci.loss.FunctionalLoss(functions.GeneratorLoss(critic, acgan_scale=acgan_generator)),
        output_expr={"labels": lambda out: out["labels"]} if acgan_generator else None,
        name="generator",
    )

    # set optimizer: Adam for each network; with TRAIN.lr_decay the rate decays linearly to 0
    critic_optimizer = ppsci.optimizer.Adam(
        training.learning_rate(cfg.TRAIN, cfg.TRAIN.iters_per_epoch * cfg.TRAIN.n_critic),
        cfg.TRAIN.beta1, cfg.TRAIN.beta2)(critic)
    generator_optimizer = ppsci.optimizer.Adam(
        training.learning_rate(cfg.TRAIN, cfg.TRAIN.iters_per_epoch),
        cfg.TRAIN.beta1, cfg.TRAIN.beta2)(generator)

    # initialize solver: one per network, both running the generator ((noise, labels) -> "fake")
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
    grid = grid_inputs(cfg)
    metric_inputs = draw_inputs(cfg, cfg.TRAIN.metric_samples, np.random.default_rng(cfg.seed + 3))
    per_epoch_metrics = cfg.TRAIN.metric_samples and parallel.is_main_process()
    scorer = ImageScorer(cfg) if per_epoch_metrics else None

    def on_epoch_end(epoch: int) -> dict:
        save_grid(cfg, generate_images(generator, grid, 100, cfg.EVAL.sample_norm),
                  osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"))
        if scorer is None or scorer.net is None:
            return {}
        m = scorer(generate_images(generator, metric_inputs, cfg.EVAL.batch_size,
                                   cfg.EVAL.sample_norm))
        return {k: m[k] for k in ("inception_score", "fid")}

    training.train_alternately(cfg, model, critic_solver, generator_solver,
                               data_state={"rng": rng, "real_batches": real_batch},
                               on_epoch_end=on_epoch_end)

    # evaluate the trained generator (rank 0 writes the results)
    if parallel.is_main_process():
        evaluate_generator(cfg, generator, cfg.TRAIN.final_eval_samples, scorer)


def evaluate_generator(cfg: DictConfig, generator, num_samples: int, scorer=None) -> dict:
    """The 10x10 grid, then IS/FID of num_samples images (none when they cannot be computed:
    samples.npz then holds the grid's images)."""
    grid = grid_inputs(cfg)
    grid_images = generate_images(generator, grid, 100, cfg.EVAL.sample_norm)
    save_grid(cfg, grid_images, osp.join(cfg.output_dir, "samples.png"))
    scorer = scorer or ImageScorer(cfg)
    if scorer.net is None:
        return report(cfg, scorer(grid_images), grid_images, grid.get("labels"))
    inputs = draw_inputs(cfg, num_samples, np.random.default_rng(cfg.seed + 4))
    images = generate_images(generator, inputs, cfg.EVAL.batch_size, cfg.EVAL.sample_norm)
    return report(cfg, scorer(images), images, inputs.get("labels"))


def evaluate(cfg: DictConfig):
    generator, critic = build_models(cfg)
    load_weights(generator, cfg.EVAL.pretrained_gen_model_path,
                 "EVAL.pretrained_gen_model_path", cfg.EVAL.pretrained_gen_sha256)
    if cfg.EVAL.pretrained_dis_model_path:  # optional: checked to fit, not needed for metrics
        load_weights(critic, cfg.EVAL.pretrained_dis_model_path,
                     "EVAL.pretrained_dis_model_path", cfg.EVAL.pretrained_dis_sha256)
    evaluate_generator(cfg, generator, cfg.EVAL.num_samples)


def export(cfg: DictConfig):
    generator, _ = build_models(cfg)
    load_weights(generator, cfg.INFER.pretrained_model_path,
                 "INFER.pretrained_model_path", cfg.INFER.pretrained_sha256)
    spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    if cfg.MODEL.conditional:
        spec["labels"] = InputSpec([None], "int64", name="labels")
    deploy.export_generator(generator, spec, cfg.INFER.export_path)


def inference(cfg: DictConfig):
    grid = grid_inputs(cfg)
    grid_images = functions.to_uint8(deploy.predict_exported(cfg, grid))
    save_grid(cfg, grid_images, osp.join(cfg.output_dir, "samples.png"))
    scorer = ImageScorer(cfg)
    if scorer.net is None:  # no samples for metrics that cannot be computed
        report(cfg, scorer(grid_images), grid_images, grid.get("labels"))
        return
    inputs = draw_inputs(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    images = functions.to_uint8(deploy.predict_exported(cfg, inputs))
    report(cfg, scorer(images), images, inputs.get("labels"))


@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_cifar10.yaml")
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
