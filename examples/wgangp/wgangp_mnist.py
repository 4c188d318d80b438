"""WGAN-GP on MNIST (the paper's gan_mnist.py), with a classifier-based quality metric.

    python wgangp_mnist.py DATA.data_path=/path/to/mnist.pkl.gz      # 200k iterations
    python wgangp_mnist.py DATA.data_path=... TRAIN.epochs=4 TRAIN.iters_per_epoch=500
    python wgangp_mnist.py mode=eval DATA.data_path=... EVAL.pretrained_gen_model_path=<run>/model_generator.pdparams
    python wgangp_mnist.py mode=export INFER.pretrained_model_path=<run>/model_generator.pdparams
    python wgangp_mnist.py mode=infer DATA.data_path=...
"""

from os import path as osp

import functions  # noqa: I001 (first: sets Paddle's fast CPU options before paddle loads)
import hydra
import numpy as np
import ppsci
from omegaconf import DictConfig
from paddle.static import InputSpec

import models


def draw_noise(cfg: DictConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, cfg.MODEL.noise_dim)).astype("float32")


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
        functions.load_weights(classifier, path, "EVAL.classifier_path")
    else:
        ppsci.utils.logger.info("Training the metric's MNIST classifier ...")
        classifier, _ = functions.train_digit_classifier(data, cfg.EVAL.classifier_epochs, cfg.seed)
        functions.save_weights(classifier, path)
    accuracy = functions.digit_accuracy(classifier, data["test"])
    ppsci.utils.logger.info(f"Metric classifier {path}: test accuracy {accuracy:.4f}")
    return classifier, accuracy


class DigitScorer:
    """Classifier metrics of generated digits, with held-out real digits as the ceiling."""

    def __init__(self, cfg: DictConfig, data: dict):
        self.classifier, self.accuracy = digit_classifier(cfg, data)
        train_images = data["train"][0][:cfg.EVAL.num_samples, None]
        features, _ = functions.classify(self.classifier, train_images)
        self.reference = functions.feature_statistics(features)  # training digits
        self.test_images = data["test"][0][:, None]

    def __call__(self, images: np.ndarray) -> dict:
        return functions.digit_metrics(self.classifier, images, self.reference)

    def ceiling(self, n: int) -> dict:
        return self(self.test_images[:n])


def report(cfg: DictConfig, scorer: DigitScorer, samples: np.ndarray) -> dict:
    """Metrics (generated and real held-out digits), samples.npz, metrics.json, grid PNG."""
    metrics = {"num_samples": len(samples), "classifier_test_accuracy": scorer.accuracy,
               "generated": scorer(samples), "real_test_digits": scorer.ceiling(len(samples))}
    np.savez(osp.join(cfg.output_dir, "samples.npz"), samples=samples.reshape(len(samples), 784))
    functions.save_json(metrics, osp.join(cfg.output_dir, "metrics.json"))
    functions.save_image_grid(samples[:64], osp.join(cfg.output_dir, "samples.png"), nrow=8)
    for name in ("generated", "real_test_digits"):
        shown = {k: round(v, 4) for k, v in metrics[name].items() if k != "class_histogram"}
        ppsci.utils.logger.info(f"[{cfg.mode}] {name}: {shown}")
    return metrics


def train(cfg: DictConfig):
    data = functions.load_mnist(cfg.DATA.data_path)
    generator, critic = models.mnist_models(cfg.MODEL.noise_dim, cfg.MODEL.dim)
    rng = np.random.default_rng(cfg.seed)
    batch = cfg.TRAIN.batch_size
    real_batch = functions.ShuffledBatches({"real": data["train"][0][:, None]}, batch, rng)

    def critic_batch():
        return {**real_batch(), "noise": draw_noise(cfg, batch, rng)}

    def generator_batch():
        return {"noise": draw_noise(cfg, batch, rng)}

    critic_constraint, generator_constraint = functions.wgan_gp_constraints(
        critic, cfg.LOSS.lambda_gp, critic_batch, generator_batch)

    critic_optimizer, generator_optimizer = functions.adam_optimizers(cfg.TRAIN, critic, generator)

    per_epoch_metrics = cfg.TRAIN.metric_samples and functions.is_main_process()
    scorer = DigitScorer(cfg, data) if per_epoch_metrics else None
    grid_noise = draw_noise(cfg, 64, np.random.default_rng(cfg.seed + 2))
    metric_noise = draw_noise(cfg, cfg.TRAIN.metric_samples, np.random.default_rng(cfg.seed + 3))

    def end_of_epoch(epoch: int) -> dict:
        grid = functions.generate(generator, {"noise": grid_noise}, len(grid_noise))
        functions.save_image_grid(grid, osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"), 8)
        if scorer is None:
            return {}
        metrics = scorer(functions.generate(generator, {"noise": metric_noise}, cfg.EVAL.batch_size))
        return {k: v for k, v in metrics.items() if k in ("inception_score", "frechet_distance")}

    resumable = {"rng": rng, "real_batches": real_batch}  # what checkpoints must hold besides the nets
    functions.train_wgan_gp(cfg, generator, critic, critic_constraint, generator_constraint,
                            critic_optimizer, generator_optimizer, resumable, end_of_epoch)
    if not functions.is_main_process():
        return  # rank 0 evaluates and writes the results
    noise = draw_noise(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    report(cfg, scorer or DigitScorer(cfg, data),
           functions.generate(generator, {"noise": noise}, cfg.EVAL.batch_size))


def evaluate(cfg: DictConfig):
    data = functions.load_mnist(cfg.DATA.data_path)
    generator, _ = models.mnist_models(cfg.MODEL.noise_dim, cfg.MODEL.dim)
    functions.load_weights(generator, cfg.EVAL.pretrained_gen_model_path,
                           "EVAL.pretrained_gen_model_path", cfg.EVAL.pretrained_gen_sha256)
    noise = draw_noise(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    report(cfg, DigitScorer(cfg, data), functions.generate(generator, {"noise": noise}, cfg.EVAL.batch_size))


def export(cfg: DictConfig):
    generator, _ = models.mnist_models(cfg.MODEL.noise_dim, cfg.MODEL.dim)
    functions.load_weights(generator, cfg.INFER.pretrained_model_path,
                           "INFER.pretrained_model_path", cfg.INFER.pretrained_sha256)
    spec = {"noise": InputSpec([None, cfg.MODEL.noise_dim], "float32", name="noise")}
    functions.export_generator(generator, spec, cfg.INFER.export_path)


def inference(cfg: DictConfig):
    data = functions.load_mnist(cfg.DATA.data_path)
    noise = draw_noise(cfg, cfg.EVAL.num_samples, np.random.default_rng(cfg.seed + 4))
    samples = functions.predict_exported(cfg, {"noise": noise})
    report(cfg, DigitScorer(cfg, data), samples)


@hydra.main(version_base=None, config_path="./conf", config_name="wgangp_mnist.yaml")
def main(cfg: DictConfig):
    {"train": train, "eval": evaluate, "export": export, "infer": inference}[cfg.mode](cfg)


if __name__ == "__main__":
    main()
