"""WGAN-GP on CIFAR-10 with the paper's ResNets (gan_cifar_resnet.py).

WGAN-GP on CIFAR-10 with the paper's ResNets (gan_cifar_resnet.py): conditional AC-GAN
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
import paddle.distributed as dist
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import cpu
import deploy
import functions
import inception
import inception_weights
import models
import parallel
import plots
import published_weights
import startup
import training
from errors import UsageError
from weights import save_json

logger = ppsci.utils.logger


def build_models(cfg: DictConfig):
    m = cfg.MODEL
    try:  # this process's share of the generator's batch-norm groups
        groups = models.local_bn_groups(m.bn_groups, dist.get_world_size(),
                                        (cfg.TRAIN.batch_size, cfg.TRAIN.generator_batch_size))
    except ValueError as e:
        raise UsageError(f"MODEL.bn_groups: {e}") from None
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
    """Inception Score (10 splits) and FID against CIFAR-10's training images, with the
    EVAL.inception network; with `paddlescience`, also the Inception Score as PaddleScience
    computed its published 5.2 (paddle.vision's Inception, published_weights.py), not comparable
    with papers' scores.

    The networks are loaded first: when none can be (offline, no weights), `available` is
    False, the metrics say why, and no samples are generated for them.
    """

    def __init__(self, cfg: DictConfig, paddlescience: bool = False):
        self.cfg, self.paddlescience = cfg, paddlescience and cfg.EVAL.paddlescience_score
        self.net, self.why_not = self._load(
            lambda: inception_weights.load_inception(cfg.EVAL.inception,
                                                     cfg.EVAL.inception_weights),
            f"EVAL.inception={cfg.EVAL.inception}, "
            f"EVAL.inception_weights={cfg.EVAL.inception_weights}", "Inception Score and FID")
        self.paddle_net = self.paddle_why_not = None
        if self.paddlescience:
            self.paddle_net, self.paddle_why_not = self._load(
                lambda: inception_weights.load_paddle_inception(
                    cfg.EVAL.paddle_inception_weights).net,
                f"EVAL.paddle_inception_weights={cfg.EVAL.paddle_inception_weights}",
                "PaddleScience's Inception Score")

    @staticmethod
    def _load(load, settings: str, what: str):
        try:
            return load(), None
        except ValueError as e:
            logger.warning(f"{what} not computed: {settings}: {e}")
            return None, f"{settings}: {e}"

    @property
    def available(self) -> bool:
        return self.net is not None or self.paddle_net is not None

    def __call__(self, images: np.ndarray) -> dict:
        if self.net is None:
            metrics = {"inception_score": None, "fid": None, "not_computed_because": self.why_not}
        else:
            features, probs = inception.features_and_probs(self.net, images,
                                                           self.cfg.EVAL.batch_size)
            score, score_std = functions.inception_score(probs, splits=10)
            reference = train_statistics(self.cfg, self.net)
            fid = functions.frechet_distance(*functions.feature_statistics(features), *reference)
            metrics = {"inception_score": score, "inception_score_std": score_std, "fid": fid,
                       "inception": self.cfg.EVAL.inception,
                       "inception_weights": self.cfg.EVAL.inception_weights}
        if self.paddlescience and self.paddle_net is None:
            metrics["paddlescience_inception_score"] = None
            metrics["paddlescience_not_computed_because"] = self.paddle_why_not
        elif self.paddlescience:
            score, score_std = published_weights.paddlescience_inception_score(self.paddle_net,
                                                                               images)
            metrics["paddlescience_inception_score"] = score
            metrics["paddlescience_inception_score_std"] = score_std
        return metrics


def train_statistics(cfg: DictConfig, net):
    """Inception feature mean and covariance of the training images, computed once and cached."""
    path = cfg.EVAL.fid_stats_path or osp.expanduser(
        f"~/.cache/wgangp/cifar10_train_{getattr(net, 'protocol', cfg.EVAL.inception)}.npz")
    if osp.isfile(path):
        stats = np.load(path)
        return stats["mu"], stats["sigma"]
    logger.info(f"Computing CIFAR-10 training-set Inception statistics for FID (cached in {path})")
    images = functions.load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)["train"][0]
    features, _ = inception.features_and_probs(net, images.transpose(0, 2, 3, 1),
                                               cfg.EVAL.batch_size)
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
        if scorer is None or not scorer.available:
            return {}
        m = scorer(generate_images(generator, metric_inputs, cfg.EVAL.batch_size,
                                   cfg.EVAL.sample_norm))
        return {k: m[k] for k in ("inception_score", "fid") if m[k] is not None}

    training.train_alternately(cfg, model, critic_solver, generator_solver,
                               data_state={"rng": rng, "real_batches": real_batch},
                               on_epoch_end=on_epoch_end)

    # evaluate the trained generator (rank 0 writes the results)
    if parallel.is_main_process():
        evaluate_generator(cfg, generator, cfg.TRAIN.final_eval_samples)


def evaluate_generator(cfg: DictConfig, generator, num_samples: int, scorer=None, critic=None,
                       architecture: str = "paper") -> dict:
    """The 10x10 grid, then IS/FID of num_samples images (none when they cannot be computed:
    samples.npz then holds the grid's images); with a critic, its scores too."""
    # PaddleScience sampled its networks with running batch-norm averages
    norm = "running" if architecture == "paddlescience" else cfg.EVAL.sample_norm
    grid = grid_inputs(cfg)
    grid_images = generate_images(generator, grid, 100, norm)
    save_grid(cfg, grid_images, osp.join(cfg.output_dir, "samples.png"))
    scorer = scorer or ImageScorer(cfg, paddlescience=cfg.mode == "eval")
    inputs, images = grid, grid_images
    if scorer.available:
        inputs = draw_inputs(cfg, num_samples, np.random.default_rng(cfg.seed + 4))
        images = generate_images(generator, inputs, cfg.EVAL.batch_size, norm)
    metrics = {**scorer(images), "architecture": architecture, "sample_norm": norm}
    if critic is not None:
        real, real_labels = functions.load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)["test"]
        real = real[:len(images)].astype("float32") * np.float32(2 / 255) - 1
        fake = images.transpose(0, 3, 1, 2).astype("float32") * np.float32(2 / 255) - 1
        labels = (real_labels[:len(images)], inputs.get("labels"))
        metrics["critic"] = functions.critic_scores(critic, real, fake, cfg.EVAL.batch_size,
                                                    *labels if cfg.MODEL.conditional else ())
    return report(cfg, metrics, images, inputs.get("labels"))


def load_published_or_ours(cfg: DictConfig, role: str, ours, source, setting: str, sha256):
    """published.load, and PaddleScience's networks are conditional (AC-GAN) only."""
    network, architecture = published_weights.load("cifar10", role, ours, source, setting,
                                                    sha256, cfg.MODEL.architecture)
    if architecture == "paddlescience" and not cfg.MODEL.conditional:
        raise UsageError(f"{setting}: PaddleScience's published CIFAR-10 networks are "
                         "conditional; evaluate them with MODEL.conditional=true.")
    return network, architecture


def evaluate(cfg: DictConfig):
    generator, critic = build_models(cfg)
    # the paper's networks, or PaddleScience's published ones (recognised by the file's keys)
    generator, architecture = load_published_or_ours(
        cfg, "generator", generator, cfg.EVAL.pretrained_gen_model_path,
        "EVAL.pretrained_gen_model_path", cfg.EVAL.pretrained_gen_sha256)
    if cfg.EVAL.pretrained_dis_model_path:  # optional: the critic's scores and class head
        critic, _ = load_published_or_ours(
            cfg, "critic", critic, cfg.EVAL.pretrained_dis_model_path,
            "EVAL.pretrained_dis_model_path", cfg.EVAL.pretrained_dis_sha256)
    else:
        critic = None
    evaluate_generator(cfg, generator, cfg.EVAL.num_samples, critic=critic,
                       architecture=architecture)


def export(cfg: DictConfig):
    generator, _ = build_models(cfg)
    generator, _ = load_published_or_ours(
        cfg, "generator", generator, cfg.INFER.pretrained_model_path,
        "INFER.pretrained_model_path", cfg.INFER.pretrained_sha256)
    spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    if cfg.MODEL.conditional:
        spec["labels"] = InputSpec([None], "int64", name="labels")
    deploy.export_generator(generator, spec, cfg.INFER.export_path)


def inference(cfg: DictConfig):
    grid = grid_inputs(cfg)
    grid_images = functions.to_uint8(deploy.predict_exported(cfg, grid))
    save_grid(cfg, grid_images, osp.join(cfg.output_dir, "samples.png"))
    scorer = ImageScorer(cfg, paddlescience=True)
    if not scorer.available:  # no samples for metrics that cannot be computed
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
