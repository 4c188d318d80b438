"""The paper's Figure 1 on a CPU: what the gradient penalty fixes that weight clipping breaks.

(a) Value surfaces of critics trained against a fixed "generator" (real data plus N(0, 1)
    noise, gan_toy.py's FIXED_GENERATOR) on 8gaussians, 25gaussians and swissroll, with
    weight clipping (RMSProp 5e-5, weights clipped to +-0.01 after every step) and with the
    gradient penalty (Adam 1e-4, beta (0.5, 0.9), lambda 0.1): the settings of gan_toy.py.
(b) For a 12-layer ReLU critic on swissroll, the norm of the gradient of the critic's output
    with respect to each layer's activations, for clipping at c = 0.1, 0.01, 0.001 and for
    the penalty (log scale), and the histograms of the critic's weights under clipping
    (c = 0.01) and under the penalty.

    python benchmarks/figure1.py --out docs/images        # about 16 min on 2 CPU cores

Prints the per-layer gradient norms as a table; writes figure1a.png and figure1b.png.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "wgangp"))

DATASETS = ("8gaussians", "25gaussians", "swissroll")
CLIPS = (0.1, 0.01, 0.001)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="folder for figure1a.png and figure1b.png")
    parser.add_argument("--steps-a", type=int, default=3000, help="critic steps per surface (a)")
    parser.add_argument(
        "--steps-b", type=int, default=2000, help="critic steps per deep critic (b)"
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--depth", type=int, default=12, help="layers of the deep critic (b)")
    parser.add_argument(
        "--width",
        type=int,
        default=256,
        help="units per layer (gan_toy.py: 512, about 4x the time)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def critic_of(depth: int, width: int):
    """gan_toy.py's critic: `depth` He-initialised ReLU layers, a Glorot output layer."""
    from gankit import networks as models

    return models.ToyMLP(2, 1, width, depth)


def fixed_fakes(real):
    """FIXED_GENERATOR: the real batch plus N(0, 1) noise."""
    import paddle

    return real + paddle.randn(real.shape)


def train_critic(critic, toy, steps: int, batch: int, clip, rng):
    """`steps` critic steps against the fixed generator: weight clipping at `clip` with
    RMSProp (TF's decay 0.9 and epsilon 1e-10), or (clip None) the penalty with Adam."""
    import paddle

    import functions
    from gankit.trainer import clip_weights

    if clip is None:
        optimizer = paddle.optimizer.Adam(
            1e-4, beta1=0.5, beta2=0.9, parameters=critic.parameters()
        )
    else:
        optimizer = paddle.optimizer.RMSProp(
            5e-5, rho=0.9, epsilon=1e-10, parameters=critic.parameters()
        )
    for _ in range(steps):
        real = paddle.to_tensor(toy.sample(batch, rng))
        fake = fixed_fakes(real)
        loss = critic(fake).mean() - critic(real).mean()
        if clip is None:
            loss = loss + 0.1 * functions.gradient_penalty(critic, real, fake)[0]
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        clip_weights(critic, clip)
    return critic


def layer_gradient_norms(critic, points):
    """Mean over `points` of |d critic / d h_k| for the activations h_k after each ReLU."""
    import paddle

    x = paddle.to_tensor(points)
    activations, h = [], x
    for layer in critic:
        h = layer(h)
        if isinstance(layer, paddle.nn.ReLU):
            activations.append(h)
    grads = paddle.grad(h.sum(), activations)
    return [float(g.norm(p=2, axis=1).mean()) for g in grads]


def surface(critic, extent=3.0, n=128):
    import numpy as np
    import paddle

    grid = np.linspace(-extent, extent, n, dtype="float32")
    xx, yy = np.meshgrid(grid, grid)
    with paddle.no_grad():
        values = critic(paddle.to_tensor(np.stack([xx.ravel(), yy.ravel()], 1))).numpy()
    return xx, yy, values.reshape(xx.shape)


def main(argv=None):
    args = parse(argv)
    from gankit import cpu

    print(f"CPU math: {cpu.use_fast_cpu_math()}", flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import paddle

    from gankit import datasets

    os.makedirs(args.out, exist_ok=True)
    start = time.time()

    # (a) value surfaces
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.4))
    for column, name in enumerate(DATASETS):
        for row, (label, clip) in enumerate(
            (("weight clipping (c = 0.01)", 0.01), ("gradient penalty", None))
        ):
            paddle.seed(args.seed)
            rng = np.random.default_rng(args.seed)
            toy = datasets.ToyDistribution(name)
            critic = train_critic(
                critic_of(3, args.width), toy, args.steps_a, args.batch, clip, rng
            )
            xx, yy, values = surface(critic)
            ax = axes[row, column]
            ax.contourf(xx, yy, values, levels=30, cmap="viridis")
            ax.contour(xx, yy, values, levels=15, colors="white", linewidths=0.4, alpha=0.6)
            real = toy.sample(500, np.random.default_rng(1))
            ax.scatter(real[:, 0], real[:, 1], s=3, c="orange", marker="+")
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=11)
            if column == 0:
                ax.set_ylabel(label, fontsize=10)
            print(f"(a) {name}, {label}: {time.time() - start:.0f} s", flush=True)
    fig.suptitle(
        f"(a) Critic value surfaces against real data + N(0, 1) noise, {args.steps_a} "
        "critic steps (orange: real points)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "figure1a.png"), dpi=110)
    plt.close(fig)

    # (b) gradient norms per layer of a deep critic on swissroll, and weight histograms
    toy = datasets.ToyDistribution("swissroll")
    probe = toy.sample(1000, np.random.default_rng(2))
    probe_fake = probe + np.random.default_rng(3).standard_normal(probe.shape).astype("float32")
    points = np.concatenate([probe, probe_fake])
    norms, weights = {}, {}
    for label, clip in [
        *((f"weight clipping, c = {c:g}", c) for c in CLIPS),
        ("gradient penalty", None),
    ]:
        paddle.seed(args.seed)
        critic = train_critic(
            critic_of(args.depth, args.width),
            toy,
            args.steps_b,
            args.batch,
            clip,
            np.random.default_rng(args.seed),
        )
        norms[label] = layer_gradient_norms(critic, points)
        weights[label] = np.concatenate(
            [p.numpy().ravel() for name, p in critic.named_parameters() if name.endswith("weight")]
        )
        print(f"(b) {label}: {time.time() - start:.0f} s", flush=True)
    fig, (left, right_top) = plt.subplots(1, 2, figsize=(11, 4.2))
    layers = np.arange(1, args.depth + 1)
    for label, values in norms.items():
        left.plot(layers, values, marker="o", label=label)
    left.set_yscale("log")  # a norm that underflows to 0 (c = 0.001, layer 1) is not drawn
    left.set_xlabel("critic layer")
    left.set_ylabel("gradient norm (log scale)")
    left.set_title(
        f"(b) gradient norms of {args.depth}-layer critics on swissroll, "
        f"{args.steps_b} critic steps",
        fontsize=10,
    )
    left.legend(fontsize=8)
    right_top.axis("off")
    inner = right_top.get_subplotspec().subgridspec(2, 1, hspace=0.45)
    for k, label in enumerate(("weight clipping, c = 0.01", "gradient penalty")):
        ax = fig.add_subplot(inner[k])
        ax.hist(weights[label], bins=80, color="C0" if k == 0 else "C3")
        ax.set_yscale("log")
        ax.set_title(f"weights, {label}", fontsize=9)
        ax.locator_params(axis="x", nbins=5)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "figure1b.png"), dpi=110)
    plt.close(fig)

    print(
        f"\nGradient norm of the critic's output with respect to each layer's activations "
        f"({args.depth}-layer ReLU critic, swissroll, {args.steps_b} critic steps; mean over "
        f"{len(points)} real and fixed-generator points); {time.time() - start:.0f} s in all\n"
    )
    print("| layer | " + " | ".join(norms) + " |")
    print("|---|" + "---|" * len(norms))
    for i in range(args.depth):
        print(f"| {i + 1} | " + " | ".join(f"{values[i]:.3g}" for values in norms.values()) + " |")
    at = {
        label: float(np.mean(np.isclose(np.abs(w), 0.01, rtol=0, atol=1e-6)))
        for label, w in weights.items()
        if label.endswith("0.01") or label == "gradient penalty"
    }
    print(
        "\nfraction of the critic's weights at +-0.01: "
        + ", ".join(f"{label}: {value:.1%}" for label, value in at.items())
    )
    return norms


if __name__ == "__main__":
    main()
