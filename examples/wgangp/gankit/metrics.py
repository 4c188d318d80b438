"""Sampling and the metrics' arithmetic: toy coverage and W1, the Inception Score, the
Frechet distance and KID (unbiased, with the kernel sums done in blocks), the critic's scores."""

import hashlib
import warnings
from typing import Dict, Optional

import numpy as np
import paddle

from . import networks


@paddle.no_grad()
def generate(
    generator, inputs: Dict[str, np.ndarray], batch_size: int, norm: str = "running"
) -> np.ndarray:
    """Run the generator on numpy `inputs` ({"noise": ...}, maybe "labels") in batches;
    norm="batch": batch norms use each batch's own statistics (networks.batch_statistics)."""
    generator.eval()
    n, out = len(inputs["noise"]), []
    with networks.sampling(generator, norm):
        for i in range(0, n, batch_size):
            batch = {k: paddle.to_tensor(v[i : i + batch_size]) for k, v in inputs.items()}
            out.append(generator(batch)["fake"].numpy())
    generator.train()
    return np.concatenate(out)


@paddle.no_grad()
def critic_scores(critic, real, fake, batch_size: int, real_labels=None, fake_labels=None) -> dict:
    """The critic's mean score of real and generated samples (arrays or tensors) and their
    difference, its estimate of the Wasserstein distance; with labels (AC-GAN), its class
    head's accuracy."""

    def run(x, labels):
        scores, hits = [], []
        for i in range(0, len(x), batch_size):
            batch = paddle.to_tensor(x[i : i + batch_size])
            if labels is None:
                scores.append(critic(batch).numpy())
                continue
            score, logits = critic.forward_with_logits(batch)
            scores.append(score.numpy())
            hits.append(logits.numpy().argmax(1) == np.asarray(labels[i : i + batch_size]))
        return float(np.concatenate(scores).mean()), (
            float(np.concatenate(hits).mean()) if hits else None
        )

    critic.eval()
    real_score, real_accuracy = run(real, real_labels)
    fake_score, fake_accuracy = run(fake, fake_labels)
    scores = {
        "mean_score_real": real_score,
        "mean_score_generated": fake_score,
        "wasserstein_estimate": real_score - fake_score,
    }
    if real_labels is not None:
        scores.update(acgan_accuracy_real=real_accuracy, acgan_accuracy_generated=fake_accuracy)
    return scores


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Exact W1 between two equal-size point sets (optimal assignment)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def toy_metrics(samples: np.ndarray, toy, rng: Optional[np.random.Generator] = None) -> dict:
    """Mode coverage, high-quality fraction and exact W1 of N toy samples.

    A sample is high quality within 3 sigma of a mode centre (of the roll's spine for the
    swiss roll); a mode is covered when at least 10 % of its fair share N/K of the
    samples land there. W1 (with `rng`) is measured against N fresh real samples;
    `w1_real_floor`, W1 between two real draws of size N, is what a perfect generator
    would score.
    """
    from scipy.spatial import cKDTree

    n = len(samples)
    anchors = toy.centers if toy.centers is not None else toy.curve()
    distance, nearest = cKDTree(anchors).query(samples)
    good = distance <= 3 * toy.sigma
    metrics = {"num_samples": n, "high_quality_fraction": float(good.mean())}
    if toy.centers is not None:
        counts = np.bincount(nearest[good], minlength=len(anchors))
        metrics["modes_covered"] = int((counts >= 0.1 * n / len(anchors)).sum())
        metrics["modes_total"] = len(anchors)
        metrics["mode_counts"] = counts.tolist()
    if rng is None:
        return metrics
    real, reference = toy.sample(n, rng), toy.sample(n, rng)
    metrics["w1"] = wasserstein1(samples, real)
    metrics["w1_real_floor"] = wasserstein1(reference, real)
    return metrics


def inception_score(probs: np.ndarray, splits: int = 10):
    """exp(E_x KL(p(y|x) || p(y))) per split of the class probabilities, as (mean, std).

    The protocol of Salimans et al. (2016): p(y) is the mean over each of `splits`
    consecutive parts of the N samples.
    """
    from scipy.special import xlogy

    n = len(probs)
    scores = []
    for i in range(splits):
        part = probs[i * n // splits : (i + 1) * n // splits].astype("float64")
        marginal = part.mean(0, keepdims=True)
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def feature_statistics(features: np.ndarray):
    """Mean and covariance of feature rows, for the Frechet distance."""
    features = features.astype("float64")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians (FID's form)."""
    from scipy import linalg

    with warnings.catch_warnings():  # singular products (e.g. one class only) are handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as is usual
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _cubic_kernel(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """k(p_i, q_j) = (p_i.q_j / d + 1)^3 for every pair (in place: it is the time KID takes)."""
    k = p @ q.T
    k /= p.shape[1]
    k += 1
    return k * k * k


def _kernel_sums(p: np.ndarray, q: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each subset s: the sum of k(p_i, q_j) over i in rows[s], j in cols[s] (index
    arrays [S, m]). Where it costs less (the per-epoch check's 1 000 samples: up to 25x),
    the whole kernel matrix is computed once, in row blocks, and each subset's sum read
    from it through 0/1 selection matrices (2 S operations an entry besides the kernel's
    2 d); else each subset's block is computed (S m^2 entries of 2 d operations)."""
    subsets, m = rows.shape
    if len(p) * len(q) * (p.shape[1] + subsets) > subsets * m * m * p.shape[1]:
        return np.array([_cubic_kernel(p[r], q[c]).sum() for r, c in zip(rows, cols)])
    pick_rows, pick_cols = (np.zeros((subsets, n)) for n in (len(p), len(q)))
    np.put_along_axis(pick_rows, rows, 1.0, axis=1)
    np.put_along_axis(pick_cols, cols, 1.0, axis=1)
    sums, step = np.zeros(subsets), max(1, 2**22 // len(q))  # 32 MiB blocks
    for start in range(0, len(p), step):
        block = _cubic_kernel(p[start : start + step], q)
        sums += ((pick_rows[:, start : start + step] @ block) * pick_cols).sum(1)
    return sums


# the reference set's within-subset sums, which every per-epoch check would otherwise
# recompute for the same reference and subsets: {digest of (features, subsets): sums}
_REFERENCE_SUMS: Dict[str, np.ndarray] = {}


def _within_sums(features: np.ndarray, indices: np.ndarray, remember: bool = False):
    """For each subset of `indices` [S, m]: the sum of k(f_i, f_j) over its pairs i != j;
    with `remember`, kept for the next call with the same features and subsets."""
    if remember:
        key = hashlib.sha1(
            features.tobytes() + indices.tobytes() + repr((features.shape, indices.shape)).encode()
        ).hexdigest()
        if key not in _REFERENCE_SUMS:
            if len(_REFERENCE_SUMS) >= 4:  # a run scores against two references
                _REFERENCE_SUMS.clear()
            _REFERENCE_SUMS[key] = _within_sums(features, indices)
        return _REFERENCE_SUMS[key]
    diagonal = (np.einsum("ij,ij->i", features, features) / features.shape[1] + 1) ** 3
    return _kernel_sums(features, features, indices, indices) - diagonal[indices].sum(1)


def kernel_inception_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
):
    """KID (Binkowski et al. 2018): the unbiased estimate of the squared MMD between two
    feature sets with the kernel k(x, y) = (x.y / d + 1)^3, averaged over `subsets` random
    subsets of min(subset_size, both sizes) rows of each (drawn without replacement);
    returns (mean, standard deviation over the subsets). Unbiased: about 0 for two samples
    of one distribution, whatever their size, where FID is biased upwards at small sizes."""
    a, b = features_a.astype("float64"), features_b.astype("float64")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, not {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    drawn = [
        (rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False))
        for _ in range(subsets)
    ]
    x, y = (np.stack(indices) for indices in zip(*drawn))

    estimates = (_within_sums(a, x) + _within_sums(b, y, remember=True)) / (
        m * (m - 1)
    ) - 2 * _kernel_sums(a, b, x, y) / m**2
    return float(np.mean(estimates)), float(np.std(estimates))


def as_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


def numbers(results: dict) -> dict:
    """The plain numbers of a results dict (what ppsci logs)."""
    return {
        k: v
        for k, v in results.items()
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
    }


def to_uint8(images) -> np.ndarray:
    """Generator output in [-1, 1], NCHW -> uint8 NHWC images, truncated as the paper's
    Inception Score code does: int((x + 1) * 255.99 / 2)."""
    images = images.numpy() if isinstance(images, paddle.Tensor) else np.asarray(images)
    pixels = ((images + 1) * np.float32(255.99 / 2)).astype(np.int32)
    return np.clip(pixels, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
