"""What makes the MNIST training step faster on a CPU: each lever measured on the whole
step (5 critic steps with the gradient penalty, 1 generator step; gan_mnist.py's networks,
batch 50), each variant in a fresh process, the variants taking turns round after round.

Every variant is the examples' step (models.py's convolutions, NCHW, the automatic thread
count) with one change; "Paddle's layers" is the step with Paddle's own convolution layers.
The table keeps the levers that lose: the examples use only those that win.

    python benchmarks/conv_levers.py [--rounds 3] [--iters 4] [--variants a,b,...]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from speed import environment_without_cpu_settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "wgangp")

STEP = r"""
import os, sys, time
sys.path.insert(0, {example!r})
from gankit import cpu
print(cpu.use_fast_cpu_math(), file=sys.stderr)
import numpy as np, paddle
from paddle import nn
from gankit import networks as models
from gankit.networks import layers
if {mkldnn}:
    paddle.set_flags({{"FLAGS_use_mkldnn": True, "FLAGS_use_onednn": True}})
if {paddle_layers}:  # Paddle's own forward: the bias added by a broadcast add
    models.Conv2D.forward = nn.Conv2D.forward
    models.Conv2DTranspose.forward = nn.Conv2DTranspose.forward
{extra}
FMT = {layout!r}
paddle.seed(0)
rng = np.random.default_rng(0)
images = rng.random((2000, 1, 28, 28), dtype="float32")
if FMT == "NHWC":
    images = images.transpose(0, 2, 3, 1).copy()
B, D_ = 50, 64

# models.MnistCritic / MnistGenerator, with the layout as a parameter
def conv(i, o):
    return models.Conv2D(i, o, 5, stride=2, padding="SAME", data_format=FMT)
critic_convs = nn.Sequential(conv(1, D_), nn.LeakyReLU(0.2), conv(D_, 2 * D_), nn.LeakyReLU(0.2),
                             conv(2 * D_, 4 * D_), nn.LeakyReLU(0.2))
critic_fc = nn.Linear(4 * 4 * 4 * D_, 1)
class Critic(nn.Layer):
    def __init__(self):
        super().__init__()
        self.convs, self.fc = critic_convs, critic_fc
    def forward(self, x):
        x = self.convs(x)
        return self.fc(x.reshape([x.shape[0], -1]))
class Generator(nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(128, 4 * 4 * 4 * D_)
        pad = models.tf_same_transposed_padding(5, 2)
        up = lambda i, o: models.Conv2DTranspose(i, o, 5, stride=2, padding=pad, data_format=FMT)
        self.up1, self.up2, self.up3 = up(4 * D_, 2 * D_), up(2 * D_, D_), up(D_, 1)
    def forward(self, z):
        x = nn.functional.relu(self.fc(z)).reshape([-1, 4 * D_, 4, 4])
        if FMT == "NHWC":
            x = x.transpose([0, 2, 3, 1])
            x = nn.functional.relu(self.up1(x))[:, :7, :7, :]
        else:
            x = nn.functional.relu(self.up1(x))[:, :, :7, :7]
        return nn.functional.sigmoid(self.up3(nn.functional.relu(self.up2(x))))
G, D = Generator(), Critic()
G_fwd, D_fwd = G, D  # the passes without a double backward
if {static}:
    G_fwd = paddle.jit.to_static(Generator(), full_graph=True)
    G_fwd.set_state_dict(G.state_dict())  # timing only: this copy does not follow G's steps
    D_fwd = paddle.jit.to_static(D.forward, full_graph=True)
opt_g = paddle.optimizer.Adam(1e-4, beta1=0.5, beta2=0.9, parameters=G.parameters())
opt_d = paddle.optimizer.Adam(1e-4, beta1=0.5, beta2=0.9, parameters=D.parameters())
sign = paddle.to_tensor([[1.0 / B]] * B + [[-1.0 / B]] * B)
noise = lambda: paddle.randn([B, 128])

def step():
    for _ in range(5):
        real = paddle.to_tensor(images[rng.integers(0, 2000, B)])
        with paddle.no_grad():
            fake = G_fwd(noise())
        alpha = paddle.rand([B, 1, 1, 1])
        x = alpha * real + (1 - alpha) * fake
        x.stop_gradient = False
        grad = paddle.grad(D(x).sum(), x, create_graph=True)[0]
        gp = ((grad.reshape([B, -1]).norm(2, axis=1) - 1) ** 2).mean()
        if {concat}:
            wasserstein = (D_fwd(paddle.concat([fake, real])) * sign).sum()
        else:
            wasserstein = D_fwd(fake).mean() - D_fwd(real).mean()
        (wasserstein + 10 * gp).backward()
        opt_d.step(); opt_d.clear_grad()
    for p in D.parameters(): p.stop_gradient = True
    (-D_fwd(G(noise())).mean()).backward()
    opt_g.step(); opt_g.clear_grad()
    for p in D.parameters(): p.stop_gradient = False

for _ in range(2): step()
tic = time.perf_counter()
for _ in range({iters}): step()
print(1000 * (time.perf_counter() - tic) / {iters})
"""

# Convolutions as one matrix product over the whole batch (Paddle's CPU kernels run one
# per sample): unfold (im2col) or fold (col2im) and matmul. Paddle has no double backward
# for unfold, so it is a PyLayer whose backward (fold) is itself differentiable.
GEMM_CONVOLUTIONS = r"""
from paddle.autograd import PyLayer
F = nn.functional

class Unfold(PyLayer):
    @staticmethod
    def forward(ctx, x, kernel, stride):
        ctx.args = (x.shape[2:], kernel, stride)
        return F.unfold(x, kernel, strides=stride)

    @staticmethod
    def backward(ctx, cols):
        size, kernel, stride = ctx.args
        return F.fold(cols, size, kernel, strides=stride)

def same_padding(size, k, s):  # TF "SAME": [before, after]
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2

def gemm_conv(self, x):  # 'SAME' stride-s convolution
    n, _, h, w = x.shape
    o, _, k, _ = self.weight.shape
    s = self._stride[0]
    (top, bottom), (left, right) = same_padding(h, k, s), same_padding(w, k, s)
    cols = Unfold.apply(F.pad(x, [left, right, top, bottom]), [k, k], s)  # N, C*k*k, L
    kk, length = cols.shape[1], cols.shape[2]
    cols = cols.transpose([1, 0, 2]).reshape([kk, n * length])
    out = paddle.matmul(self.weight.reshape([o, kk]), cols).reshape([o, n, length])
    out = out.transpose([1, 0, 2]).reshape([n, o, -(-h // s), -(-w // s)])
    return layers._add_bias(out, self.bias)

def gemm_deconv(self, x, output_size=None):  # padding [top, bottom, left, right]
    n, ci, h, w = x.shape
    _, co, k, _ = self.weight.shape
    s = self._stride[0]
    top, bottom, left, right = self._padding
    xs = x.reshape([n, ci, h * w]).transpose([1, 0, 2]).reshape([ci, n * h * w])
    cols = paddle.matmul(self.weight.reshape([ci, co * k * k]), xs, transpose_x=True)
    cols = cols.reshape([co * k * k, n, h * w]).transpose([1, 0, 2])
    full = F.fold(cols, [(h - 1) * s + k, (w - 1) * s + k], [k, k], strides=s)
    out = full[:, :, top:(h - 1) * s + k - bottom, left:(w - 1) * s + k - right]
    return layers._add_bias(out, self.bias)

models.Conv2D.forward = gemm_conv
models.Conv2DTranspose.forward = gemm_deconv
"""

EXAMPLES_STEP = dict(
    paddle_layers=False, layout="NCHW", mkldnn=False, concat=False, static=False, extra=""
)
# name: (what changes, switches, environment)
VARIANTS = {
    "examples": (
        "the examples' step: conv_layers (bias added at the output's shape), NCHW, "
        "automatic threads",
        {},
        {},
    ),
    "paddle_layers": (
        "Paddle's own Conv2D / Conv2DTranspose (broadcast bias add)",
        {"paddle_layers": True},
        {},
    ),
    "nhwc": ("NHWC data layout", {"layout": "NHWC"}, {}),
    "mkldnn": (
        "FLAGS_use_mkldnn=1 and FLAGS_use_onednn=1 (oneDNN kernels)",
        {"mkldnn": True},
        {"FLAGS_use_mkldnn": "1", "FLAGS_use_onednn": "1"},
    ),
    "concat": ("real and fake in one critic forward (batch 100)", {"concat": True}, {}),
    "gemm": (
        "each convolution one matrix product over the batch (unfold / fold + matmul)",
        {"extra": GEMM_CONVOLUTIONS},
        {},
    ),
    "static": ("paddle.jit.to_static forwards (all but the penalty's)", {"static": True}, {}),
    "1thread": ("1 math thread (MKL_NUM_THREADS=1)", {}, {"MKL_NUM_THREADS": "1"}),
    "2threads": ("2 math threads (MKL_NUM_THREADS=2)", {}, {"MKL_NUM_THREADS": "2"}),
}


def run(name, iters):
    _, switches, extra_env = VARIANTS[name]
    code = STEP.format(example=EXAMPLE, iters=iters, **{**EXAMPLES_STEP, **switches})
    env = environment_without_cpu_settings()
    env.update(extra_env, PYTHONWARNINGS="ignore")
    with tempfile.NamedTemporaryFile("w", suffix=".py") as program:  # to_static reads the source
        program.write(code)
        program.flush()
        out = subprocess.run(
            [sys.executable, program.name], env=env, capture_output=True, text=True
        )
    if out.returncode:
        return None, out.stderr.strip().splitlines()[-1][:120]
    return float(out.stdout.strip().splitlines()[-1]), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=4, help="timed generator iterations")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ",".join(VARIANTS)
    )
    args = parser.parse_args()
    names = args.variants.split(",")
    times, errors = {name: [] for name in names}, {}
    start = time.time()
    for _ in range(args.rounds):
        for name in names:
            ms, error = run(name, args.iters)
            if error:
                errors[name] = error
            else:
                times[name].append(ms)
    print(
        f"MNIST step (gan_mnist.py's networks, batch 50, n_critic 5): ms per generator "
        f"iteration, median of {args.rounds} rounds of {args.iters} iterations; "
        f"{os.cpu_count()} CPUs; {time.time() - start:.0f} s in all\n"
    )
    base = statistics.median(times["examples"]) if times.get("examples") else None
    print("| variant | ms / iteration | all rounds | vs the examples' step |")
    print("|---|---|---|---|")
    for name in names:
        if not times[name]:
            print(f"| {VARIANTS[name][0]} | failed: {errors.get(name, '')} | | |")
            continue
        median = statistics.median(times[name])
        ratio = f"{median / base:.2f}x" if base else "-"
        rounds = ", ".join(f"{v:.0f}" for v in times[name])
        print(f"| {VARIANTS[name][0]} | {median:.0f} | {rounds} | {ratio} |")


if __name__ == "__main__":
    main()
