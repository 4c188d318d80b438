"""Plots: toy samples over the critic's contour map, loss curves, image grids."""

import os
from os import path as osp

import numpy as np
import paddle

from .files import write_atomically


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_toy(
    path: str, real: np.ndarray, fake: np.ndarray, critic=None, title: str = "", extent: float = 3.0
) -> None:
    """Real (orange) and generated (green) points over the critic's contour map."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    if critic is not None:
        grid = np.linspace(-extent, extent, 128, dtype="float32")
        xx, yy = np.meshgrid(grid, grid)
        with paddle.no_grad():
            points = paddle.to_tensor(np.stack([xx.ravel(), yy.ravel()], 1))
            scores = critic(points).numpy().reshape(xx.shape)
        ax.contour(xx, yy, scores, levels=20, cmap="viridis", linewidths=0.8)
    ax.scatter(real[:, 0], real[:, 1], s=4, c="orange", marker="+", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="green", marker="+", label="generated")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or ".", exist_ok=True)
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


# the panels of losses.png: title, then (record key, legend label) of each curve; a panel
# shows when its first curve is in the records
LOSS_PANELS = (
    (
        "losses",
        (
            ("critic_loss", "critic (training batches)"),
            ("dev_critic_loss", "critic (held-out data)"),
            ("generator_loss", "generator"),
        ),
    ),
    (
        "Wasserstein estimate E[D(x)] - E[D(G(z))]",
        (("wasserstein", "training batches"), ("dev_wasserstein", "held-out data")),
    ),
    (
        "gradient penalty E[(|grad D| - 1)^2]",
        (("gradient_penalty", "training batches"), ("dev_gradient_penalty", "held-out data")),
    ),
    ("|grad D| at the interpolates, mean and spread", (("grad_norm_mean", "mean"),)),
    (
        "AC-GAN class accuracy",
        (("acgan_accuracy_real", "real images"), ("acgan_accuracy_fake", "generated images")),
    ),
    (
        "standard GAN: D's mean probability",
        (("real_probability", "real"), ("fake_probability", "generated")),
    ),
)


def plot_losses(history: list, path: str) -> None:
    """Per-epoch losses and the critic's diagnostics, one panel each (LOSS_PANELS), as far
    as the records have them: training against held-out critic loss, the Wasserstein
    estimate, the penalty, the gradient norm at the interpolates (mean, and a band of one
    standard deviation, with 1 marked), the AC-GAN's accuracies and the standard GAN's
    probabilities."""
    if not history:
        return
    plt = _pyplot()
    it = np.array([h["iteration"] for h in history])
    panels = [
        (title, [(k, label) for k, label in curves if k in history[0]])
        for title, curves in LOSS_PANELS
        if curves[0][0] in history[0]
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    style = {"marker": "o"} if len(history) < 20 else {}  # one epoch is one visible point
    for ax, (title, curves) in zip(axes[0], panels):
        for key, label in curves:
            ax.plot(it, [h.get(key, np.nan) for h in history], label=label, **style)
        if curves[0][0] == "grad_norm_mean":
            mean = np.array([h["grad_norm_mean"] for h in history])
            std = np.array([h.get("grad_norm_std", 0.0) for h in history])
            ax.fill_between(it, mean - std, mean + std, alpha=0.25, label="± 1 std")
            ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
        if len(curves) > 1 or curves[0][0] == "grad_norm_mean":
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("generator iteration")
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def to_unit_range(samples: np.ndarray) -> np.ndarray:
    """Generated samples in [-1, 1], N x C x H x W, as a grid shows them: [0, 1]; RGB as it
    is, any other number of channels by the first."""
    samples = samples if samples.shape[1] in (1, 3) else samples[:, :1]
    return (np.clip(samples, -1, 1) + 1) / 2


def save_image_grid(images: np.ndarray, path: str, nrow: int, row_labels=None) -> None:
    """Save images [N, C, H, W] in [0, 1] as one PNG grid of nrow columns; row_labels
    (one per row) are written to the left of the rows."""
    plt = _pyplot()
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = np.ones((rows * (h + 2) + 2, nrow * (w + 2) + 2, c), "float32")
    for i, image in enumerate(np.clip(images, 0, 1)):
        r, col = divmod(i, nrow)
        grid[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + col * (w + 2) : 2 + col * (w + 2) + w] = (
            image.transpose(1, 2, 0)
        )
    os.makedirs(osp.dirname(path) or ".", exist_ok=True)
    grid = grid[..., 0] if c == 1 else grid
    if row_labels is None:
        write_atomically(
            path, lambda tmp: plt.imsave(tmp, grid, cmap="gray" if c == 1 else None, format="png")
        )
        return
    scale, margin = 3, 90  # screen pixels per image pixel; room for the labels
    width, height = grid.shape[1] * scale + margin, grid.shape[0] * scale
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes([margin / width, 0, 1 - margin / width, 1])
    ax.imshow(grid, cmap="gray" if c == 1 else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(
        [2 + r * (h + 2) + h / 2 for r in range(len(row_labels))],
        labels=list(row_labels),
        fontsize=9,
    )
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def save_cifar_grid(conditional: bool, images: np.ndarray, path: str) -> None:
    """A 10x10 grid of uint8 NHWC images (conditional: a row per class, labelled)."""
    save_image_grid(
        images.transpose(0, 3, 1, 2) / np.float32(255),
        path,
        nrow=10,
        row_labels=CIFAR10_CLASSES if conditional else None,
    )
