"""WGAN-GP on MNIST (the paper's gan_mnist.py), with a classifier-based quality metric.

    python wgangp_mnist.py DATA.data_path=/path/to/mnist.pkl.gz      # 200k iterations
    python wgangp_mnist.py DATA.data_path=... TRAIN.epochs=4 TRAIN.iters_per_epoch=500
    python wgangp_mnist.py mode=eval DATA.data_path=... EVAL.pretrained_gen_model_path=<run>/model_generator.pdparams
    python wgangp_mnist.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
    python wgangp_mnist.py mode=infer DATA.data_path=...
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
from weights import load_weights, save_json, save_weights

logger = ppsci.utils.logger


def digit_classifier(cfg: DictConfig, data: dict):
    """The metric's classifier: EVAL.classifier_path if set, else the one cached in this
    run directory or beside the evaluated generator's weights, else trained and cached."""
    path = cfg.EVAL.classifier_path
    if not path:
        here = osp.join(cfg.output_dir, "mnist_classifier.pdparams")
        weights = str(cfg.EVAL.pretrained_gen_model_path or "")
        beside = osp.join(osp.dirname(weights), "mnist_classifier.pdparams")
        path = here if osp.isfile(here) or not osp.isfile(beside) else beside
    if osp.isfile(path) or cfg.EVAL.classifier_path:
        classifier = models.MnistClassifier()
        load_weights(classifier, path, "EVAL.classifier_path")
    else:
        logger.info(f"Training the metric's MNIST classifier ({cfg.EVAL.classifier_epochs} "
                    f"epochs on {len(data['train'][0])} digits; cached as {path}) ...")
        classifier, _ = functions.train_digit_classifier(data, cfg.EVAL.classifier_epochs, cfg.seed)
        if parallel.is_main_process():
            save_weights(classifier, path)
    accuracy = functions.digit_accuracy(classifier, data["test"])
    logger.info(f"Metric classifier {path}: test accuracy {accuracy:.4f}")
    return classifier, accuracy


class DigitScorer:
    """Classifier metrics of generated digits, with held-out real digits as the ceiling."""

    def __init__(self, cfg: DictConfig, data: dict):
        self.classifier, self.accuracy = digit_classifier(cfg, data)
        train_images = data["train"][0][:cfg.EVAL.num_samples, None]
        features, _ = functions.classify(self.classifier, train_images)
        self.reference = functions.feature_statistics(features)  # training digits
        logger.info(f"Metric reference: classifier features of {len(train_images)} training digits")
        self.test_images = data["test"][0][:, None]

    def __call__(self, images: np.ndarray) -> dict:
        return functions.digit_metrics(self.classifier, images, self.reference)

    def ceiling(self, n: int) -> dict:
        return self(self.test_images[:n])


def report(cfg: DictConfig, scorer: DigitScorer, samples: np.ndarray, extra: dict = None) -> dict:
    """Metrics (generated and real held-out digits, and `extra`: the architecture, the
    critic's scores), samples.npz, metrics.json, grid PNG."""
    metrics = {"num_samples": len(samples), "classifier_test_accuracy": scorer.accuracy,
               "generated": scorer(samples), "real_test_digits": scorer.ceiling(len(samples)),
               **(extra or {})}
    np.savez(osp.join(cfg.output_dir, "samples.npz"), samples=samples.reshape(len(samples), 784))
    save_json(metrics, osp.join(cfg.output_dir, "metrics.json"))
    plots.save_image_grid(samples[:64], osp.join(cfg.output_dir, "samples.png"), nrow=8)
    for name in ("generated", "real_test_digits"):
        shown = {k: round(v, 4) for k, v in metrics[name].items() if k != "class_histogram"}
        logger.info(f"[{cfg.mode}] {name}: {shown}")
    return metrics


def eval_noise(cfg: DictConfig) -> np.ndarray:  # the same for every mode's evaluation
    return functions.draw_noise(cfg.EVAL.num_samples, cfg.MODEL.noise_dim, cfg.seed + 4)


def train(cfg: DictConfig):
    data = functions.load_mnist(cfg.DATA.data_path)
    noise_dim, batch = cfg.MODEL.noise_dim, cfg.TRAIN.batch_size

    # set model
    generator, critic = models.mnist_models(noise_dim, cfg.MODEL.dim)

    # set constraint: each step draws the next real batch of a shuffled pass and fresh noise
    rng = np.random.default_rng(cfg.seed)  # the data stream (its state is checkpointed)
    real_batch = functions.ShuffledBatches({"real": data["train"][0][:, None]}, batch, rng)

    def critic_batch():
        return {**real_batch(), "noise": functions.draw_noise(batch, noise_dim, rng)}

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
    # every process builds the scorer (only rank 0 uses it): gloo, CPU data parallelism's
    # backend, gives up on a process that waits 30 s, as the others would for rank 0
    scorer = DigitScorer(cfg, data) if cfg.TRAIN.metric_samples else None
    grid_noise = functions.draw_noise(64, noise_dim, np.random.default_rng(cfg.seed + 2))
    metric_noise = functions.draw_noise(cfg.TRAIN.metric_samples, noise_dim,
                                        np.random.default_rng(cfg.seed + 3))

    def on_epoch_end(epoch: int) -> dict:
        grid = functions.generate(generator, {"noise": grid_noise}, len(grid_noise))
        plots.save_image_grid(grid, osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"), 8)
        if scorer is None:
            return {}
        samples = functions.generate(generator, {"noise": metric_noise}, cfg.EVAL.batch_size)
        metrics = scorer(samples)
        return {k: v for k, v in metrics.items() if k in ("inception_score", "frechet_distance")}

    training.train_alternately(cfg, model, critic_solver, generator_solver,
                               data_state={"rng": rng, "real_batches": real_batch},
                               on_epoch_end=on_epoch_end)

    # evaluate the trained generator (rank 0 writes the results)
    if parallel.is_main_process():
        samples = functions.generate(generator, {"noise": eval_noise(cfg)}, cfg.EVAL.batch_size)
        report(cfg, scorer or DigitScorer(cfg, data), samples, {"architecture": "paper"})


def evaluate(cfg: DictConfig):
    data = functions.load_mnist(cfg.DATA.data_path)
    generator, critic = models.mnist_models(cfg.MODEL.noise_dim, cfg.MODEL.dim)
    # the paper's networks, or PaddleScience's published ones (recognised by the file's keys)
    generator, architecture = published_weights.load(
        "mnist", "generator", generator, cfg.EVAL.pretrained_gen_model_path,
        "EVAL.pretrained_gen_model_path", cfg.EVAL.pretrained_gen_sha256, cfg.MODEL.architecture)
    samples = functions.generate(generator, {"noise": eval_noise(cfg)}, cfg.EVAL.batch_size)
    extra = {"architecture": architecture}
    if cfg.EVAL.pretrained_dis_model_path:  # optional: the critic's scores of real and fake
        critic, _ = published_weights.load(
            "mnist", "critic", critic, cfg.EVAL.pretrained_dis_model_path,
            "EVAL.pretrained_dis_model_path", cfg.EVAL.pretrained_dis_sha256,
            cfg.MODEL.architecture)
        real = data["test"][0][:len(samples), None]
        extra["critic"] = functions.critic_scores(critic, real, samples, cfg.EVAL.batch_size)
    report(cfg, DigitScorer(cfg, data), samples, extra)


def export(cfg: DictConfig):
    generator, _ = models.mnist_models(cfg.MODEL.noise_dim, cfg.MODEL.dim)
    generator, _ = published_weights.load(
        "mnist", "generator", generator, cfg.INFER.pretrained_model_path,
        "INFER.pretrained_model_path", cfg.INFER.pretrained_sha256, cfg.MODEL.architecture)
    spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    deploy.export_generator(generator, spec, cfg.INFER.export_path)


def inference(cfg: DictConfig):
    data = functions.load_mnist(cfg.DATA.data_path)
    samples = deploy.predict_exported(cfg, {"noise": eval_noise(cfg)})
    report(cfg, DigitScorer(cfg, data), samples)


@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_mnist.yaml")
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
