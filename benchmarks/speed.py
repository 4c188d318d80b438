"""ms per generator iteration of an example's training (wgangp_<example>.py, as users run
it) next to a minimal hand-written Paddle loop of the same models and step, under several
CPU settings (Paddle's stock ones, 1 or 2 math threads, the examples' automatic choice);
optionally next to the same minimal loop in PyTorch (toy, MNIST) and to the script on 2
processes (paddle.distributed.launch, one math thread each).

Every program runs in a fresh process (the math-library settings must be chosen before
the framework loads); the programs take turns, round after round, so that a busy machine
slows them alike. Each number is one process's steady-state time, after warm-up; the
table gives the median over rounds.

    python benchmarks/speed.py --example toy   [--rounds 3] [--iters 60] [--torch-python PY]
    python benchmarks/speed.py --example mnist [--rounds 3] [--iters 6]  [--data DIR]
        [--configs stock,1thread,2threads,auto] [--processes 2] [--torch-python PY]
    python benchmarks/speed.py --example cifar10 [--rounds 2] [--iters 2]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "wgangp")
sys.path.insert(0, EXAMPLE)
from gankit import cpu  # noqa: E402  (the names of the settings it reads; nothing heavy)

# stock: Paddle as installed (1 thread, MKL's generic path on AMD); 1thread / 2threads: the
# examples' MKL choice with that many threads; auto: everything as the examples choose it
CONFIGS = {
    "stock": {"MKL_DEBUG_CPU_TYPE": "", "MKL_NUM_THREADS": "1"},
    "1thread": {"MKL_NUM_THREADS": "1"},
    "2threads": {"MKL_NUM_THREADS": "2"},
    "auto": {},
}

# what each example trains: (script overrides, noise dim, batch, lambda, models.* factory)
EXAMPLES = {
    "toy": dict(
        overrides=["EVAL.num_samples=100"],
        noise=2,
        batch=256,
        lam=0.1,
        models="models.toy_models(2, 512, 3)",
        real="data(256)",
        data="dist = datasets.ToyDistribution('8gaussians'); data = lambda n: dist.sample(n, rng)",
    ),
    "mnist": dict(
        overrides=["TRAIN.eval_during_train=false", "EVAL.num_samples=100"],
        noise=128,
        batch=50,
        lam=10.0,
        models="models.mnist_models(128, 64)",
        real="data(50)",
        data="images = rng.random((2000, 1, 28, 28), dtype='float32'); "
        "data = lambda n: images[rng.integers(0, 2000, n)]",
    ),
    "cifar10": dict(
        overrides=[
            "DATA.md5=null",
            "EVAL.num_samples=100",
            "EVAL.inception_weights=/nonexistent.pdparams",
        ],
        batch=64,
    ),
}

# every loop program ends by timing `step` (one generator iteration) after warm-up
TIMED = r"""
for _ in range({warmup}): step()
tic = time.perf_counter()
for _ in range({iters}): step()
print(1000 * (time.perf_counter() - tic) / {iters})
"""

MINIMAL = (
    r"""
import sys, time
sys.path.insert(0, {example!r})
from gankit import cpu
cpu.use_fast_cpu_math()  # the scripts' CPU settings (the environment's, where it sets them)
import functions, models
from gankit import datasets
import numpy as np, paddle
paddle.seed(0)
rng = np.random.default_rng(0)
{data}
arch, D = {models}
G = arch.net
opt_g = paddle.optimizer.Adam(1e-4, beta1=0.5, beta2=0.9, parameters=G.parameters())
opt_d = paddle.optimizer.Adam(1e-4, beta1=0.5, beta2=0.9, parameters=D.parameters())
B = {batch}

def step():
    for _ in range(5):
        real = paddle.to_tensor({real})
        with paddle.no_grad():
            fake = G(paddle.randn([B, {noise}]))
        alpha = paddle.rand([B] + [1] * (real.ndim - 1))
        x = alpha * real + (1 - alpha) * fake
        x.stop_gradient = False
        grad = paddle.grad(D(x).sum(), x, create_graph=True)[0]
        gp = ((grad.reshape([B, -1]).norm(2, axis=1) - 1) ** 2).mean()
        loss = D(fake).mean() - D(real).mean() + {lam} * gp
        loss.backward(); opt_d.step(); opt_d.clear_grad()
    for p in D.parameters(): p.stop_gradient = True
    loss = -D(G(paddle.randn([B, {noise}]))).mean()
    loss.backward(); opt_g.step(); opt_g.clear_grad()
    for p in D.parameters(): p.stop_gradient = False

"""
    + TIMED
)

# the conditional ResNets with their AC-GAN terms; critic batch 64, generator batch 128
MINIMAL_CIFAR = (
    r"""
import sys, time
sys.path.insert(0, {example!r})
from gankit import cpu
cpu.use_fast_cpu_math()
import functions
import numpy as np, paddle, models
import paddle.nn.functional as F
paddle.seed(0)
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (2000, 3, 32, 32), dtype=np.uint8)
labels = rng.integers(0, 10, 2000)
arch, D = models.cifar_models(128, 128, 128, True, False)
G = arch.net
opt_g = paddle.optimizer.Adam(2e-4, beta1=0.0, beta2=0.9, parameters=G.parameters())
opt_d = paddle.optimizer.Adam(2e-4, beta1=0.0, beta2=0.9, parameters=D.parameters())

def step():
    for _ in range(5):
        index = rng.integers(0, 2000, 64)
        real = functions.cifar_real(paddle.to_tensor(images[index]))
        y = paddle.to_tensor(labels[index])
        with paddle.no_grad():
            fake = G(paddle.randn([64, 128]), y)
        score_real, logits = D.forward_with_logits(real)
        alpha = paddle.rand([64, 1, 1, 1])
        x = alpha * real + (1 - alpha) * fake
        x.stop_gradient = False
        grad = paddle.grad(D(x).sum(), x, create_graph=True)[0]
        gp = ((grad.reshape([64, -1]).norm(2, axis=1) - 1) ** 2).mean()
        loss = D(fake).mean() - score_real.mean() + 10 * gp + F.cross_entropy(logits, y.reshape([-1, 1]))
        loss.backward(); opt_d.step(); opt_d.clear_grad()
    for p in D.parameters(): p.stop_gradient = True
    y = paddle.to_tensor(rng.integers(0, 10, 128))
    score, logits = D.forward_with_logits(G(paddle.randn([128, 128]), y))
    loss = -score.mean() + 0.1 * F.cross_entropy(logits, y.reshape([-1, 1]))
    loss.backward(); opt_g.step(); opt_g.clear_grad()
    for p in D.parameters(): p.stop_gradient = False

"""
    + TIMED
)

TORCH_TOY = (
    r"""
import time, numpy as np, torch
from torch import nn
torch.manual_seed(0)
def mlp(i, o):
    return nn.Sequential(nn.Linear(i, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, o))
G, D = mlp(2, 2), mlp(2, 1)
opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.9))
opt_d = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.5, 0.9))
rng = np.random.default_rng(0)
angles = np.arange(8) * np.pi / 4
centers = 2 * np.stack([np.cos(angles), np.sin(angles)], 1) / 1.414
def real_batch():
    x = centers[rng.integers(0, 8, 256)] + 0.02 / 1.414 * rng.standard_normal((256, 2))
    return torch.from_numpy(x.astype("float32"))
def step():
    for _ in range(5):
        real = real_batch()
        with torch.no_grad():
            fake = G(torch.randn(256, 2))
        alpha = torch.rand(256, 1)
        x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        grad = torch.autograd.grad(D(x).sum(), x, create_graph=True)[0]
        gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
        loss = D(fake).mean() - D(real).mean() + 0.1 * gp
        opt_d.zero_grad(); loss.backward(); opt_d.step()
    for p in D.parameters(): p.requires_grad_(False)
    loss = -D(G(torch.randn(256, 2))).mean()
    opt_g.zero_grad(); loss.backward(); opt_g.step()
    for p in D.parameters(): p.requires_grad_(True)
"""
    + TIMED
)


# gan_mnist.py's networks in PyTorch, the same shapes as models.mnist_models (speed only:
# torch's default initialisation); symmetric padding 2 gives TF's "SAME" output sizes
TORCH_MNIST = (
    r"""
import time, numpy as np, torch
from torch import nn
torch.manual_seed(0)
D_ = 64
class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(128, 4 * 4 * 4 * D_)
        up = lambda i, o: nn.ConvTranspose2d(i, o, 5, 2, padding=2, output_padding=1)
        self.up1, self.up2, self.up3 = up(4 * D_, 2 * D_), up(2 * D_, D_), up(D_, 1)
    def forward(self, z):
        x = torch.relu(self.fc(z)).view(-1, 4 * D_, 4, 4)
        x = torch.relu(self.up1(x))[:, :, :7, :7]
        return torch.sigmoid(self.up3(torch.relu(self.up2(x))))
class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, D_, 5, 2, 2), nn.LeakyReLU(0.2), nn.Conv2d(D_, 2 * D_, 5, 2, 2),
            nn.LeakyReLU(0.2), nn.Conv2d(2 * D_, 4 * D_, 5, 2, 2), nn.LeakyReLU(0.2))
        self.fc = nn.Linear(4 * 4 * 4 * D_, 1)
    def forward(self, x):
        return self.fc(self.convs(x).reshape(x.shape[0], -1))
G, D = Generator(), Critic()
opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.9))
opt_d = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.5, 0.9))
rng = np.random.default_rng(0)
images = rng.random((2000, 1, 28, 28), dtype="float32")
def step():
    for _ in range(5):
        real = torch.from_numpy(images[rng.integers(0, 2000, 50)])
        with torch.no_grad():
            fake = G(torch.randn(50, 128))
        alpha = torch.rand(50, 1, 1, 1)
        x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        grad = torch.autograd.grad(D(x).sum(), x, create_graph=True)[0]
        gp = ((grad.reshape(50, -1).norm(2, dim=1) - 1) ** 2).mean()
        loss = D(fake).mean() - D(real).mean() + 10 * gp
        opt_d.zero_grad(); loss.backward(); opt_d.step()
    for p in D.parameters(): p.requires_grad_(False)
    loss = -D(G(torch.randn(50, 128))).mean()
    opt_g.zero_grad(); loss.backward(); opt_g.step()
    for p in D.parameters(): p.requires_grad_(True)
"""
    + TIMED
)


def run_ours(example, env, iters, data, processes=1):
    """The real script for 3 epochs of `iters` (on `processes` processes, launched with
    paddle.distributed.launch); steady state from epochs 2 and 3."""
    extra = [f"DATA.data_path={data}"] if data else []
    with tempfile.TemporaryDirectory() as run_dir:
        launcher = (
            [
                "-m",
                "paddle.distributed.launch",
                "--nproc_per_node",
                str(processes),
                "--log_dir",
                os.path.join(run_dir, "launch_logs"),
            ]
            if processes > 1
            else []
        )
        subprocess.run(
            [
                sys.executable,
                *launcher,
                os.path.join(EXAMPLE, f"wgangp_{example}.py"),
                "TRAIN.epochs=3",
                f"TRAIN.iters_per_epoch={iters}",
                f"hydra.run.dir={run_dir}",
                *EXAMPLES[example]["overrides"],
                *extra,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        with open(os.path.join(run_dir, "losses.json")) as f:
            history = json.load(f)
    return 1000 / statistics.mean(h["iters_per_second"] for h in history[1:])


def generated_data(example):
    """A data set in the real format for speed runs (speed does not depend on the pixels)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    if example == "mnist":
        from mnist_files import write_idx_dir

        return write_idx_dir(tempfile.mkdtemp(), n_train=2000)
    from cifar_files import write_tarball

    return write_tarball(os.path.join(tempfile.mkdtemp(), "cifar-10-python.tar.gz"))


def environment_without_cpu_settings():
    """This environment less the CPU settings the examples would otherwise keep as the user's
    (cpu.py's names: MKL's code path and both thread counts)."""
    return {k: v for k, v in os.environ.items() if k not in (cpu.MKL_ISA, *cpu.THREAD_SETTINGS)}


def automatic_choice():
    """What cpu.use_fast_cpu_math() chooses on this machine, in a fresh process."""
    env = environment_without_cpu_settings()
    code = f"import sys; sys.path.insert(0, {EXAMPLE!r}); from gankit import cpu; print(cpu.use_fast_cpu_math())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(env, PYTHONWARNINGS="ignore"),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def run_code(python, code, env):
    out = subprocess.run(
        [python, "-c", code], env=env, check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", choices=sorted(EXAMPLES), default="toy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, help="timed generator iterations (toy 60, mnist 6)")
    parser.add_argument(
        "--configs",
        default="stock,1thread,2threads,auto",
        help="comma-separated, of: " + ",".join(CONFIGS),
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="also time the script on this many launched processes",
    )
    parser.add_argument(
        "--data",
        help="DATA.data_path for the script (MNIST: a directory "
        "with idx files); the minimal loop uses random images",
    )
    parser.add_argument("--torch-python", help="a python with torch, for PyTorch rows (toy, mnist)")
    args = parser.parse_args()
    spec = EXAMPLES[args.example]
    iters = args.iters or {"toy": 60, "mnist": 6, "cifar10": 2}[args.example]
    if args.example == "mnist" and not args.data:
        parser.error("--data is needed for mnist (e.g. a directory with MNIST idx files)")
    if args.example == "cifar10" and not args.data:
        args.data = generated_data("cifar10")

    programs = {}
    template = MINIMAL_CIFAR if args.example == "cifar10" else MINIMAL
    code = template.format(
        example=EXAMPLE, warmup=1 if args.example == "cifar10" else 2, iters=iters, **spec
    )
    torch_code = {"toy": TORCH_TOY, "mnist": TORCH_MNIST}.get(args.example)
    for name in args.configs.split(","):
        env = environment_without_cpu_settings()
        env.update(CONFIGS[name], PYTHONWARNINGS="ignore")
        programs[(name, f"wgangp_{args.example}.py")] = lambda env=env: run_ours(
            args.example, env, iters, args.data
        )
        programs[(name, "minimal Paddle loop")] = lambda env=env: run_code(
            sys.executable, code, env
        )
        if args.torch_python and torch_code and name != "stock":  # auto: torch's own choice
            programs[(name, "minimal PyTorch loop")] = lambda env=env: run_code(
                args.torch_python, torch_code.format(warmup=2, iters=iters), env
            )
    if args.processes > 1:
        env = environment_without_cpu_settings()
        programs[(f"auto, {args.processes} processes", f"wgangp_{args.example}.py")] = lambda: (
            run_ours(args.example, env, iters, args.data, args.processes)
        )

    times = {key: [] for key in programs}
    start = time.time()
    for _ in range(args.rounds):
        for key, program in programs.items():
            times[key].append(program())
    print(
        f"{args.example}: ms per generator iteration (n_critic=5, batch {spec['batch']}), "
        f"median of {args.rounds} rounds of {iters} timed iterations; "
        f"{os.cpu_count()} CPUs; {time.time() - start:.0f} s in all\n"
    )
    minimal = {c: statistics.median(v) for (c, p), v in times.items() if p == "minimal Paddle loop"}
    best = min(minimal, key=minimal.get)
    print(
        f"| CPU settings | program | ms / iteration | all rounds | vs minimal Paddle loop, "
        f"same settings | vs minimal Paddle loop, best ({best}) |"
    )
    print("|---|---|---|---|---|---|")
    for (config, program), values in times.items():
        median = statistics.median(values)
        same = f"{median / minimal[config]:.2f}x" if config in minimal else "-"
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(
            f"| {config} | {program} | {median:.1f} | {rounds} | {same} "
            f"| {median / minimal[best]:.2f}x |"
        )
    print(f"\nthe examples' automatic choice here: {automatic_choice()}")
    ours = {c: statistics.median(v) for (c, p), v in times.items() if p.startswith("wgangp_")}
    torch = {c: statistics.median(v) for (c, p), v in times.items() if p == "minimal PyTorch loop"}
    if "auto" in ours:
        print(
            f"wgangp_{args.example}.py (auto) / minimal Paddle loop at its best: "
            f"{ours['auto'] / minimal[best]:.2f}x"
        )
    if torch:
        fastest = min(ours, key=ours.get)
        print(
            f"fastest wgangp_{args.example}.py ({fastest}) / fastest PyTorch loop "
            f"({min(torch, key=torch.get)}): {ours[fastest] / min(torch.values()):.2f}x"
        )


if __name__ == "__main__":
    main()
