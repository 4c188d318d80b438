"""The WGAN-GP examples' data, losses with the gradient penalty, and metrics (Gulrajani et al. 2017).

Data: the generator's noise, the toy data's batches, CIFAR-10's real images as the critic
sees them (the data sets' readers are gankit.datasets). Losses: the critic's and the
generator's, called by the constraints' ppsci.loss.FunctionalLoss. Metrics: the functions
the validators' ppsci.metric.FunctionalMetric call (their arithmetic is gankit.metrics,
gankit.classifier and gankit.inception).
"""

from typing import Dict, Optional

import numpy as np
import paddle
import paddle.distributed as dist
import ppsci

from gankit import networks
from gankit.classifier import digit_metrics
from gankit.datasets import FixedPoints, ToyDistribution, toy_training_points
from gankit.field_metrics import field_metrics
from gankit.metrics import as_numpy, critic_scores, numbers, toy_metrics
from gankit.parallel import local_rows
from gankit.progress import TermMeter, spread


# ---------------------------------------------------------------------------
# Data: the generator's inputs, and the real images as the critic sees them (the data
# sets themselves are read by gankit.datasets)
# ---------------------------------------------------------------------------
def draw_noise(n: int, noise_dim: int, rng) -> np.ndarray:
    """Generator noise: n float32 N(0, 1) rows of noise_dim from `rng` (a Generator or a seed)."""
    rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
    return rng.standard_normal((n, noise_dim)).astype("float32")


def draw_inputs(cfg, n: int, rng, labels=None, classes: int = 10) -> dict:
    """Generator inputs: noise, and (conditional) labels, uniform over `classes` unless given
    (`rng`: a Generator or a seed)."""
    rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
    inputs = {"noise": draw_noise(n, cfg.MODEL.noise_dim, rng)}
    if cfg.MODEL.conditional:
        inputs["labels"] = rng.integers(0, classes, n) if labels is None else labels
    return inputs


def toy_batches(cfg, toy: ToyDistribution) -> tuple:
    """The toy example's data for StreamConstraint: the critic's batches (real points and
    noise), the generator's (noise), each drawn fresh (the toy data are endless) or, with
    DATA.fixed_points (the paper's 25gaussians), the next batch of a fixed set; and the
    state a checkpoint keeps to continue the stream exactly."""
    noise_dim, batch = cfg.MODEL.noise_dim, cfg.TRAIN.batch_size
    rng = np.random.default_rng(cfg.seed)
    n_points, fixed = toy_training_points(cfg.DATA), None
    if n_points:
        fixed = FixedPoints(toy.fixed_set(n_points, np.random.default_rng(cfg.seed + 5)), batch)

    def critic_batch():
        real = fixed.next() if fixed else toy.sample(batch, rng)
        return {"real": real, "noise": draw_noise(batch, noise_dim, rng)}

    def generator_batch():
        return {"noise": draw_noise(batch, noise_dim, rng)}

    return critic_batch, generator_batch, {"rng": rng, **({"fixed_points": fixed} if fixed else {})}


def grid_inputs(cfg) -> dict:
    """100 fixed inputs for the 10x10 grid: one row per class when conditional."""
    labels = np.repeat(np.arange(10), 10) if cfg.MODEL.conditional else None
    return draw_inputs(cfg, 100, np.random.default_rng(cfg.seed + 2), labels)


def cifar_real(images: paddle.Tensor) -> paddle.Tensor:
    """uint8 images -> 2 (x / 256 - 0.5) + U(0, 1/128) dequantisation noise, as the paper's
    code feeds real images to its critic; the noise is drawn for the global batch."""
    x = images.astype("float32") * (2 / 256) - 1
    shape = [x.shape[0] * dist.get_world_size()] + list(x.shape[1:])
    return x + local_rows(paddle.uniform(shape, min=0.0, max=1 / 128))


# ---------------------------------------------------------------------------
# Losses (ppsci.loss.FunctionalLoss functions), generic over key names and lambda
# ---------------------------------------------------------------------------
def gradient_norms(critic, real, fake, alpha=None, create_graph: bool = True):
    """||grad D(x_hat)||_2 of each sample at x_hat = alpha*real + (1-alpha)*fake.

    alpha ~ U(0, 1), one per sample. The per-sample gradient of sum(D(x_hat)) is valid
    because the critic has no batch statistics; create_graph keeps it differentiable.
    """
    if alpha is None:  # drawn for the global batch, like the data (local_rows)
        shape = [real.shape[0] * dist.get_world_size()] + [1] * (real.ndim - 1)
        alpha = local_rows(paddle.rand(shape, dtype=real.dtype))
    x_hat = alpha * real + (1 - alpha) * fake
    x_hat.stop_gradient = False
    (grad,) = paddle.grad(critic(x_hat).sum(), x_hat, create_graph=create_graph)
    # reshape, not flatten: Paddle 3.3 has no double backward for flatten
    return grad.reshape([grad.shape[0], -1]).norm(p=2, axis=1)


def gradient_penalty(critic, real, fake, alpha=None, create_graph: bool = True):
    """(E[(||grad D(x_hat)||_2 - 1)^2], the norms) at the interpolates (paper, Algorithm 1):
    the penalty and the per-sample norms it is made of (gradient_norms)."""
    norms = gradient_norms(critic, real, fake, alpha, create_graph)
    return ((norms - 1) ** 2).mean(), norms


class CriticLoss:
    """Critic loss E[D(fake)] - E[D(real)] + lambda * gradient penalty
    [+ acgan_scale * cross-entropy of the critic's class head on real images (AC-GAN)];
    lambda_gp None: no penalty (WGAN, whose weight clipping bounds the critic instead).

    Reads output_dict[real_key], [fake_key] (and [label_key] for AC-GAN); real and fake
    are constants here, so the critic step never backpropagates into the generator. The
    meter keeps the Wasserstein estimate, the penalty and the gradient norms' mean and
    spread at the interpolates (how closely the penalty holds them at 1) and, AC-GAN, the
    class head's accuracy on real and on generated images.
    """

    def __init__(
        self,
        critic,
        lambda_gp: Optional[float],
        real_key: str = "real",
        fake_key: str = "fake",
        acgan_scale: float = 0.0,
        label_key: str = "labels",
    ):
        self.critic, self.lambda_gp = critic, lambda_gp
        self.real_key, self.fake_key = real_key, fake_key
        self.acgan_scale, self.label_key = acgan_scale, label_key
        self.create_graph = True  # False: a penalty to measure, not to train with
        self.meter = TermMeter()

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        real = output_dict[self.real_key].detach()
        fake = output_dict[self.fake_key].detach()
        # separate forwards: Paddle's double backward fails on slices of one output
        if self.acgan_scale:
            (score_real, logits), (score_fake, logits_fake) = (
                self.critic.forward_with_logits(x) for x in (real, fake)
            )
        else:
            score_real, score_fake = self.critic(real), self.critic(fake)
        wasserstein = score_real.mean() - score_fake.mean()
        terms = {"critic_wasserstein": -wasserstein}
        measured = {"wasserstein": wasserstein}
        if self.lambda_gp is not None:
            penalty, norms = gradient_penalty(
                self.critic, real, fake, create_graph=self.create_graph
            )
            terms["critic_penalty"] = self.lambda_gp * penalty
            norms = norms.detach()  # logged only: no graph for their mean and spread
            measured.update(
                gradient_penalty=penalty, grad_norm_mean=norms.mean(), grad_norm_std=spread(norms)
            )
        if self.acgan_scale:
            labels = output_dict[self.label_key]
            acgan = paddle.nn.functional.cross_entropy(logits, labels.reshape([-1, 1]))
            terms["critic_acgan"] = self.acgan_scale * acgan
            measured["acgan_accuracy_real"] = (logits.argmax(1) == labels).astype("float32").mean()
            measured["acgan_accuracy_fake"] = (
                (logits_fake.argmax(1) == labels).astype("float32").mean()
            )
        self.meter.add(**measured)
        return terms


class GeneratorLoss:
    """Generator loss -E[D(G(z))] [+ acgan_scale * cross-entropy of the critic's class head
    on the generated images and the labels they were drawn for (AC-GAN)]."""

    def __init__(
        self, critic, fake_key: str = "fake", acgan_scale: float = 0.0, label_key: str = "labels"
    ):
        self.critic, self.fake_key = critic, fake_key
        self.acgan_scale, self.label_key = acgan_scale, label_key

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        fake = output_dict[self.fake_key]
        if not self.acgan_scale:
            return {"generator": -self.critic(fake).mean()}
        score, logits = self.critic.forward_with_logits(fake)
        labels = output_dict[self.label_key].reshape([-1, 1])
        acgan = paddle.nn.functional.cross_entropy(logits, labels)
        return {"generator": -score.mean(), "generator_acgan": self.acgan_scale * acgan}


def _bce(logits, target: float):
    """Sigmoid cross-entropy of logits against a constant target (TF's
    sigmoid_cross_entropy_with_logits, as gan_mnist.py uses it)."""
    return paddle.nn.functional.binary_cross_entropy_with_logits(
        logits, paddle.full_like(logits, target)
    )


class DCGANCriticLoss:
    """The standard GAN's discriminator loss, gan_mnist.py's MODE='dcgan':
    (CE(D(fake), 0) + CE(D(real), 1)) / 2 with the sigmoid cross-entropy of the logit D(x).
    The meter keeps the mean probabilities D gives real and generated samples."""

    def __init__(self, critic, real_key: str = "real", fake_key: str = "fake"):
        self.critic, self.real_key, self.fake_key = critic, real_key, fake_key
        self.meter = TermMeter()

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        real = output_dict[self.real_key].detach()
        fake = output_dict[self.fake_key].detach()
        logit_real, logit_fake = self.critic(real), self.critic(fake)
        self.meter.add(
            real_probability=paddle.nn.functional.sigmoid(logit_real).mean(),
            fake_probability=paddle.nn.functional.sigmoid(logit_fake).mean(),
        )
        return {"discriminator": (_bce(logit_fake, 0.0) + _bce(logit_real, 1.0)) / 2}


class DCGANGeneratorLoss:
    """The non-saturating generator loss CE(D(G(z)), 1) of gan_mnist.py's MODE='dcgan'."""

    def __init__(self, critic, fake_key: str = "fake"):
        self.critic, self.fake_key = critic, fake_key

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        return {"generator": _bce(self.critic(output_dict[self.fake_key]), 1.0)}


def losses(loss_cfg, critic, acgan_scale: float = 0.0, acgan_scale_g: float = 0.0):
    """(critic loss, generator loss) of LOSS.kind: "wgan-gp" (the penalty), "wgan" (the
    Wasserstein losses without it; the script clips the weights) or "dcgan" (the standard
    GAN), the functions the constraints' ppsci.loss.FunctionalLoss call."""
    kind = loss_cfg.get("kind", "wgan-gp")
    if kind == "dcgan":
        pair = DCGANCriticLoss(critic), DCGANGeneratorLoss(critic)
    else:
        penalty = loss_cfg.lambda_gp if kind == "wgan-gp" else None
        pair = (
            CriticLoss(critic, penalty, acgan_scale=acgan_scale),
            GeneratorLoss(critic, acgan_scale=acgan_scale_g),
        )
    return pair


class HeldOutCriticCost:
    """The critic's loss on held-out real data against generated samples, the paper's
    dev_cost (its gap to the training loss is the sign of an overfitting critic), as a
    FunctionalMetric: `critic_loss` (a CriticLoss or DCGANCriticLoss of its own, so that the
    training's running means stay apart) in full batches of `batch_size` of the validator's
    label "real" (through `prepare`, as the critic's step feeds them) and output "fake" (and
    "labels"), averaged over the batches as the paper does, and the Wasserstein estimate
    on them. Batch norms in the critic use each batch's statistics, as in training."""

    def __init__(self, critic_loss, batch_size: int, prepare=None):
        self.loss, self.batch_size = critic_loss, batch_size
        if hasattr(critic_loss, "create_graph"):  # the penalty is measured, not trained on
            critic_loss.create_graph = False
        self.prepare = prepare or (lambda real: real)
        self.results = None

    def __call__(self, output_dict, label_dict):
        real = label_dict["real"]
        real = paddle.to_tensor(real) if isinstance(real, np.ndarray) else real
        n, size = len(real), self.batch_size
        costs = []
        with networks.batch_statistics(self.loss.critic):
            for i in range(0, max(n - n % size, 1), size):
                batch = {k: v[i : i + size] for k, v in output_dict.items()}
                terms = self.loss({**batch, "real": self.prepare(real[i : i + size])})
                costs.append(float(sum(terms.values())))
        measured = self.loss.meter.pop_means()
        self.results = {
            "critic_loss": float(np.mean(costs)),
            **{k: measured[k] for k in ("wasserstein",) if k in measured},
        }
        return self.results


def no_loss(output_dict, label_dict=None, weight_dict=None):
    """The validators' loss: none (evaluation scores the samples with metrics)."""
    return {}


def validator(
    inputs: Dict[str, np.ndarray],
    metrics: dict,
    batch_size: int,
    labels: Optional[Dict[str, np.ndarray]] = None,
) -> dict:
    """{"eval": a SupervisedValidator} that generates a sample for each row of `inputs`
    ("noise"[, "labels"]) in batches of `batch_size` (with EVAL.sample_norm=batch, the batch
    norms' batches too) and scores them with `metrics` (name -> metric function below); real
    data in `labels` ride along to the metrics."""
    dataloader_cfg = {
        "dataset": {"name": "NamedArrayDataset", "input": inputs, "label": labels or {}},
        "batch_size": batch_size,
        "sampler": {"name": "BatchSampler", "shuffle": False, "drop_last": False},
    }
    output_expr = {
        key: (lambda out, key=key: out[key]) for key in ("fake", *inputs) if key != "noise"
    }
    validator = ppsci.validate.SupervisedValidator(
        dataloader_cfg,
        ppsci.loss.FunctionalLoss(no_loss),
        output_expr=output_expr,
        metric={name: ppsci.metric.FunctionalMetric(m) for name, m in metrics.items()},
        name="eval",
    )
    return {validator.name: validator}


# ---------------------------------------------------------------------------
# The validators' metrics (ppsci.metric.FunctionalMetric functions). ppsci's evaluation
# gathers every batch's output and calls each metric once with the whole set; each keeps
# the samples and its full results (lists, names) for the run's files and returns its
# numbers to ppsci's log.
# ---------------------------------------------------------------------------


class ToyMetrics:
    """toy_metrics of the generated points; W1 too with `rng` (slow: an assignment problem)."""

    def __init__(self, toy: ToyDistribution, rng: Optional[np.random.Generator] = None):
        self.toy, self.rng = toy, rng
        self.samples = self.results = None

    def __call__(self, output_dict, label_dict=None):
        self.samples = as_numpy(output_dict["fake"])
        self.results = toy_metrics(self.samples, self.toy, self.rng)
        return numbers(self.results)


class DigitMetrics:
    """The MNIST classifier's metrics of generated digits (digit_metrics), their distances
    to the held-out digits of `references` (digit_references) and, labelled, to the
    training digits; with `real_digits`, also of as many real digits: held-out ones
    ("real_test_digits", the Inception Score's ceiling) and training ones against the
    held-out ("real_training_digits", the distances' real floor)."""

    def __init__(self, classifier, references: dict, real_digits: Optional[dict] = None):
        self.classifier, self.references, self.real_digits = classifier, references, real_digits
        self.samples = self.results = None

    def __call__(self, output_dict, label_dict=None):
        self.samples = as_numpy(output_dict["fake"])
        held_out, training = self.references["held-out"], self.references["training"]
        generated = digit_metrics(self.classifier, self.samples, held_out, training)
        self.results = {"generated": generated}
        if self.real_digits is not None:
            count = len(self.samples)
            test = digit_metrics(self.classifier, self.real_digits["test"][:count], None)
            self.results["real_test_digits"] = test
            self.results["real_training_digits"] = digit_metrics(
                self.classifier, self.real_digits["train"][:count], held_out
            )
        return numbers(generated)


class CriticScores:
    """critic_scores of the generated samples against the real ones the validator carries
    as its label "real" (CIFAR-10: uint8, preprocessed as in training); with `labels`
    (AC-GAN), also the class head's accuracy on the labels of both."""

    def __init__(self, critic, batch_size: int, acgan: bool = False):
        self.critic, self.batch_size, self.acgan = critic, batch_size, acgan
        self.results = None

    def __call__(self, output_dict, label_dict):
        real, fake = (
            paddle.to_tensor(x) if isinstance(x, np.ndarray) else x
            for x in (label_dict["real"], output_dict["fake"])
        )
        if real.dtype == paddle.uint8:
            real = cifar_real(real)
        labels = (
            (as_numpy(label_dict["real_labels"]), as_numpy(output_dict["labels"]))
            if self.acgan
            else ()
        )
        self.results = critic_scores(self.critic, real, fake, self.batch_size, *labels)
        return numbers(self.results)


class FieldMetrics:
    """Metrics of generated fields that need no pretrained network (gankit.field_metrics):
    swd, value_w1 and spectrum_error of the samples in the data's units (`units`, the
    generator's DataUnits) against the real data's reference statistics, beside each its
    floor (two halves of the real data)."""

    def __init__(self, stats: dict, units):
        self.stats, self.units = stats, units
        self.samples = self.results = None

    def __call__(self, output_dict, label_dict=None):
        self.samples = self.units.scaling().to_data(as_numpy(output_dict["fake"]))
        self.results = field_metrics(self.samples, self.stats)
        return numbers(self.results)
