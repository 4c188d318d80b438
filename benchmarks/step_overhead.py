"""Where a generator iteration's time goes: ms per generator iteration of the examples'
training (wgangp_<example>.py, run as users run it) beside a minimal hand-written Paddle
loop of the same step (the same networks, the paper's losses with the gradient penalty
written out in the loop, Adam, n_critic critic steps, fresh batches, nothing logged, no host
reads), at four sizes; and, with --profile,
a cProfile of our iterations at the tiny size with the host reads they make.

Each time is the difference of two run lengths: (time of a long run - time of a short
run) / (long - short) generator iterations, so start-up, warm-up and the final evaluation
cancel. Ours is timed by its own training clock (losses.json's epoch record:
iters_per_epoch / iters_per_second, the epoch's loop without its evaluation and files);
the minimal loop times its loop. Every run is a fresh process; ours and the minimal loop
take turns, round after round (--repeats), and the table gives the medians.

Sizes: tiny (the toy example with MODEL.hidden_size=16 TRAIN.batch_size=16, n_critic 5:
the framework's per-step cost, hardly any math), toy (its defaults: hidden 512, batch 256),
MNIST (its defaults, batch 50; needs --mnist, a directory with MNIST idx files: with only
the t10k files, they serve as the training digits too), CIFAR-10 (its defaults: conditional
ResNets, critic batch 64, generator batch 128; --cifar, else a small synthetic tarball).
Timings are only meaningful on a quiet machine.

    python benchmarks/step_overhead.py                                  # all sizes, 5 rounds
    python benchmarks/step_overhead.py --sizes tiny --repeats 1 --profile
    python benchmarks/step_overhead.py --sizes tiny,MNIST --mnist DIR --lengths MNIST=3,8
"""

import argparse
import json
import os
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "wgangp")
DEFAULT_MNIST = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist"))

# every run of ours: one epoch of N generator iterations, nothing else timed or logged
COMMON = [
    "TRAIN.epochs=1",
    "TRAIN.eval_during_train=false",
    "log_freq=1000000000",
    "EVAL.num_samples=100",
]

# size: (example, script overrides, default (short, long) run lengths)
SIZES = {
    "tiny": ("toy", ["MODEL.hidden_size=16", "TRAIN.batch_size=16", "TRAIN.n_critic=5"], (50, 550)),
    "toy": ("toy", [], (20, 120)),
    "MNIST": ("mnist", ["TRAIN.dev_freq=0"], (10, 30)),
    "CIFAR-10": (
        "cifar10",
        [
            "TRAIN.dev_freq=0",
            "TRAIN.final_eval_samples=100",
            "EVAL.inception_weights=/nonexistent.pdparams",
            "EVAL.paddlescience_score=false",
        ],
        (10, 30),
    ),
}


# ---------------------------------------------------------------------------
# The minimal loop (a worker process: --minimal-worker SIZE N DATA [settings...])
# ---------------------------------------------------------------------------
def minimal_worker(size: str, iterations: int, data: str, extra: list) -> None:
    """Print the seconds of `iterations` generator iterations of a plain Paddle loop of the
    size's settings (and `extra` ones: MODEL.*, TRAIN.*, LOSS.* are read)."""
    sys.path.insert(0, EXAMPLE)
    from gankit import cpu

    cpu.use_fast_cpu_math()  # as the scripts do, before any tensor math
    import numpy as np
    import paddle
    from omegaconf import OmegaConf

    import functions
    from gankit import datasets, networks

    example, overrides, _ = SIZES[size]
    cfg = OmegaConf.load(os.path.join(EXAMPLE, "conf", f"wgangp_{example}.yaml"))
    cfg.merge_with_dotlist(
        [o for o in [*overrides, *extra] if o.startswith(("MODEL.", "TRAIN.", "LOSS."))]
    )
    model, train, loss_cfg = cfg.MODEL, cfg.TRAIN, cfg.LOSS
    n_critic, batch = train.n_critic, train.batch_size
    paddle.seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    acgan, acgan_g = 0.0, 0.0

    if example == "toy":
        G, D = networks.toy_models(model.noise_dim, model.hidden_size, model.num_layers)
        toy = datasets.ToyDistribution(cfg.DATA.mode)
        real_batch = lambda: {"real": paddle.to_tensor(toy.sample(batch, rng))}  # noqa: E731
        noise = lambda n: paddle.to_tensor(functions.draw_noise(n, model.noise_dim, rng))  # noqa: E731
    elif example == "mnist":
        G, D = networks.mnist_models(model.noise_dim, model.dim, model.batch_norm)
        images = datasets.load_mnist(data)["train"][0][:, None]
        real_batch = lambda: {  # noqa: E731
            "real": paddle.to_tensor(images[rng.integers(0, len(images), batch)])
        }
        noise = lambda n: paddle.randn([n, model.noise_dim])  # noqa: E731
    else:
        from gankit.networks import local_bn_groups

        groups = local_bn_groups(model.bn_groups, 1, (batch, train.generator_batch_size))
        G, D = networks.cifar_models(
            model.noise_dim, model.dim_g, model.dim_d, model.conditional, model.layer_norm, groups
        )
        images, labels = datasets.load_cifar10(data, None)["train"]
        if model.conditional:
            acgan, acgan_g = loss_cfg.acgan_scale, loss_cfg.acgan_scale_g

        def real_batch():
            index = rng.integers(0, len(images), batch)
            return {
                "real": functions.cifar_real(paddle.to_tensor(images[index])),
                "labels": paddle.to_tensor(labels[index]),
            }

        noise = lambda n: paddle.randn([n, model.noise_dim])  # noqa: E731
    net = G.net
    penalty_weight = loss_cfg.lambda_gp
    cross_entropy = paddle.nn.functional.cross_entropy

    def critic_loss(inputs):
        """The paper's critic loss written out, nothing logged: E[D(fake)] - E[D(real)] +
        lambda E[(||grad D(x_hat)|| - 1)^2] (+ AC-GAN's class term)."""
        real, fake = inputs["real"], inputs["fake"]
        if acgan:
            (score_real, logits), (score_fake, _) = (D.forward_with_logits(x) for x in (real, fake))
        else:
            score_real, score_fake = D(real), D(fake)
        alpha = paddle.rand([real.shape[0]] + [1] * (real.ndim - 1), dtype=real.dtype)
        x_hat = alpha * real + (1 - alpha) * fake
        x_hat.stop_gradient = False
        (grad,) = paddle.grad(D(x_hat).sum(), x_hat, create_graph=True)
        norms = grad.reshape([grad.shape[0], -1]).norm(p=2, axis=1)
        loss = score_fake.mean() - score_real.mean() + penalty_weight * ((norms - 1) ** 2).mean()
        if acgan:
            loss = loss + acgan * cross_entropy(logits, inputs["labels"].reshape([-1, 1]))
        return loss

    def generator_loss(inputs):
        """-E[D(G(z))] (+ AC-GAN's class term)."""
        if not acgan_g:
            return -D(inputs["fake"]).mean()
        score, logits = D.forward_with_logits(inputs["fake"])
        return -score.mean() + acgan_g * cross_entropy(logits, inputs["labels"].reshape([-1, 1]))

    rate, b1, b2 = train.learning_rate, train.beta1, train.beta2
    opt_d = paddle.optimizer.Adam(rate, beta1=b1, beta2=b2, parameters=D.parameters())
    opt_g = paddle.optimizer.Adam(rate, beta1=b1, beta2=b2, parameters=net.parameters())
    conditional = example == "cifar10" and model.conditional
    g_batch = train.get("generator_batch_size", batch)

    def fake_of(inputs, n):
        if conditional:
            return net(noise(n), inputs["labels"])
        return net(noise(n))

    def step():
        for p in net.parameters():  # the generator frozen: its samples are constants
            p.stop_gradient = True
        for _ in range(n_critic):
            inputs = real_batch()
            with paddle.no_grad():
                inputs["fake"] = fake_of(inputs, batch)
            loss = critic_loss(inputs)
            loss.backward()
            opt_d.step()
            opt_d.clear_grad()
        for p in net.parameters():
            p.stop_gradient = False
        for p in D.parameters():
            p.stop_gradient = True
        inputs = {"labels": paddle.to_tensor(rng.integers(0, 10, g_batch))} if conditional else {}
        inputs["fake"] = fake_of(inputs, g_batch)
        loss = generator_loss(inputs)
        loss.backward()
        opt_g.step()
        opt_g.clear_grad()
        for p in D.parameters():
            p.stop_gradient = False

    tic = time.perf_counter()
    for _ in range(iterations):
        step()
    print(json.dumps({"seconds": time.perf_counter() - tic}))


# ---------------------------------------------------------------------------
# Ours under a profiler (a worker process: --profile-worker OUT SCRIPT overrides...)
# ---------------------------------------------------------------------------
def profile_worker(out: str, script: str, overrides: list) -> None:
    """Run `script` as __main__ with cProfile on around each generator iteration (the
    trainer's step and after_iteration) and count the host reads they make."""
    import cProfile
    import runpy

    sys.path.insert(0, os.path.dirname(script))
    import paddle

    from gankit import trainer

    counts = {"item": 0, "numpy": 0, "float": 0}
    inside, reading = [False], [False]

    def counting(name, method):
        def wrapper(self, *args, **kwargs):
            if not inside[0] or reading[0]:  # float() reads through numpy(): one read
                return method(self, *args, **kwargs)
            counts[name] += 1
            reading[0] = True
            try:
                return method(self, *args, **kwargs)
            finally:
                reading[0] = False

        return wrapper

    for name, attr in (("item", "item"), ("numpy", "numpy"), ("float", "__float__")):
        setattr(paddle.Tensor, attr, counting(name, getattr(paddle.Tensor, attr)))

    profiler = cProfile.Profile()
    clock = {"seconds": 0.0, "iterations": 0}

    def profiled(method, iteration=False):
        def wrapper(self, *args, **kwargs):
            inside[0] = True
            tic = time.perf_counter()
            profiler.enable()
            try:
                return method(self, *args, **kwargs)
            finally:
                profiler.disable()
                clock["seconds"] += time.perf_counter() - tic
                clock["iterations"] += iteration
                inside[0] = False

        return wrapper

    cls = trainer.AlternatingTrainer
    cls.step = profiled(cls.step, iteration=True)
    cls.after_iteration = profiled(cls.after_iteration)
    sys.argv = [script, *overrides]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code:
            raise
    profiler.dump_stats(os.path.join(out, "step.prof"))
    with open(os.path.join(out, "counts.json"), "w") as f:
        json.dump({**clock, **counts}, f)


# ---------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------
def run(command, env, what):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(
            f"{what} failed ({done.returncode}): {shlex.join(command)}\n"
            f"{(done.stdout + done.stderr)[-3000:]}"
        )
    return done.stdout


class Benchmark:
    def __init__(self, args):
        self.args, self.commands = args, {}
        self.env = dict(os.environ, PYTHONWARNINGS="ignore")
        self.tmp = tempfile.mkdtemp(prefix="step_overhead_")
        self.data = {}

    def data_overrides(self, size):
        example = SIZES[size][0]
        if example == "mnist":
            return [f"DATA.data_path={self.data[size]}", *self.classifier]
        if example == "cifar10":
            return [f"DATA.data_path={self.data[size]}", "DATA.md5=null"]
        return []

    def ours_command(self, size, n, run_dir):
        example, overrides, _ = SIZES[size]
        return [
            sys.executable,
            os.path.join(EXAMPLE, f"wgangp_{example}.py"),
            *COMMON,
            *overrides,
            *self.extra.get(size, []),
            *self.data_overrides(size),
            f"TRAIN.iters_per_epoch={n}",
            f"hydra.run.dir={run_dir}",
        ]

    def ours(self, size, n):
        """Seconds of the training loop of an n-iteration run (its epoch record)."""
        run_dir = tempfile.mkdtemp(dir=self.tmp)
        command = self.ours_command(size, n, run_dir)
        self.commands.setdefault((size, "ours"), command)
        tic = time.perf_counter()
        run(command, self.env, f"wgangp ({size}, {n} iterations)")
        wall = time.perf_counter() - tic
        with open(os.path.join(run_dir, "losses.json")) as f:
            record = json.load(f)[-1]
        cached = os.path.join(run_dir, "mnist_classifier.pdparams")
        if SIZES[size][0] == "mnist" and not self.classifier and os.path.isfile(cached):
            kept = shutil.copy(cached, os.path.join(self.tmp, "mnist_classifier.pdparams"))
            self.classifier = [f"EVAL.classifier_path={kept}"]  # train the metric's once
        shutil.rmtree(run_dir, ignore_errors=True)
        return n / record["iters_per_second"], wall

    def minimal(self, size, n):
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--minimal-worker",
            size,
            str(n),
            self.data.get(size, ""),
            *self.extra.get(size, []),
        ]
        self.commands.setdefault((size, "minimal"), command)
        tic = time.perf_counter()
        out = run(command, self.env, f"minimal loop ({size}, {n} iterations)")
        return json.loads(out.strip().splitlines()[-1])["seconds"], time.perf_counter() - tic

    def prepare_data(self, sizes):
        self.classifier = []
        if "MNIST" in sizes:
            self.data["MNIST"] = mnist_directory(self.args.mnist, self.tmp)
        if "CIFAR-10" in sizes:
            if self.args.cifar:
                self.data["CIFAR-10"] = os.path.abspath(self.args.cifar)
            else:
                sys.path.insert(0, os.path.join(ROOT, "tests"))
                from cifar_files import write_tarball

                self.data["CIFAR-10"] = write_tarball(
                    os.path.join(self.tmp, "cifar-10-python.tar.gz"), n_train=2000, n_test=100
                )

    def measure(self, sizes, lengths):
        """{size: {"ours": [ms], "minimal": [ms]}}, rounds taking turns."""
        if "MNIST" in sizes:  # one run first to train and cache the metric's classifier,
            self.ours("MNIST", 1)  # so that no timed run's start-up differs from another's
            self.commands.clear()
        results = {
            s: {"ours": [], "minimal": [], "ours_wall": [], "minimal_wall": []} for s in sizes
        }
        for r in range(self.args.repeats):
            for size in sizes:
                short, long = lengths[size]
                for program in ("ours", "minimal"):
                    timer = getattr(self, program)
                    (t_long, w_long), (t_short, w_short) = timer(size, long), timer(size, short)
                    results[size][program].append(1000 * (t_long - t_short) / (long - short))
                    results[size][f"{program}_wall"].append(
                        1000 * (w_long - w_short) / (long - short)
                    )
                    print(
                        f"round {r + 1} {size} {program}: "
                        f"{results[size][program][-1]:.2f} ms/iteration",
                        file=sys.stderr,
                    )
        return results


def mnist_directory(given, tmp):
    """A directory with the four idx files: `given`, or one linking its t10k files as the
    training files too when it has no others (speed does not depend on which digits)."""
    path = os.path.abspath(given)
    names = [
        f"{s}-{k}-idx{d}-ubyte"
        for s in ("train", "t10k")
        for k, d in (("images", 3), ("labels", 1))
    ]
    present = lambda d, n: any(os.path.isfile(os.path.join(d, n + e)) for e in (".gz", ""))  # noqa: E731
    if all(present(path, n) for n in names) or os.path.isfile(path):
        return path
    linked = os.path.join(tmp, "mnist")
    os.makedirs(linked, exist_ok=True)
    for kind, d in (("images", 3), ("labels", 1)):
        for ext in (".gz", ""):
            source = os.path.join(path, f"t10k-{kind}-idx{d}-ubyte{ext}")
            if os.path.isfile(source):
                for split in ("train", "t10k"):
                    os.symlink(source, os.path.join(linked, f"{split}-{kind}-idx{d}-ubyte{ext}"))
                break
    print(f"{path} has no training files: its t10k digits serve as both splits", file=sys.stderr)
    return linked


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return f"{line.split(':', 1)[1].strip()}, {len(os.sched_getaffinity(0))} cores available"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs"


def profile(bench, top: int) -> None:
    """cProfile of ours at the tiny size: the top functions by cumulative and by own time
    with their share of the profiled iterations, and the host reads per iteration."""
    short, long = bench.lengths["tiny"]
    out = tempfile.mkdtemp(dir=bench.tmp)
    run_dir = os.path.join(out, "run")
    command = bench.ours_command("tiny", long, run_dir)
    wrapped = [sys.executable, os.path.abspath(__file__), "--profile-worker", out, *command[1:]]
    run(wrapped, bench.env, "the profiled run")
    with open(os.path.join(out, "counts.json")) as f:
        counts = json.load(f)
    stats = pstats.Stats(os.path.join(out, "step.prof"))
    total = stats.total_tt  # the profiled time: every generator iteration, nothing else
    n = counts["iterations"]
    print(f"\n## Profile: ours, tiny size, {n} generator iterations under cProfile\n")
    print(
        f"{1000 * counts['seconds'] / n:.2f} ms per iteration under the profiler "
        f"({1000 * total / n:.2f} ms of it profiled); shares are of the profiled time."
    )
    print(
        f"command (the script under cProfile, enabled around each iteration; host reads "
        f"counted): `{shlex.join(wrapped)}`\n"
    )
    reads = counts["item"] + counts["numpy"] + counts["float"]
    print(
        f"host reads per generator iteration: {reads / n:g} (item: {counts['item'] / n:g}, "
        f"numpy: {counts['numpy'] / n:g}, float: {counts['float'] / n:g})"
    )
    entries = stats.stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    for key, title in ((3, "cumulative"), (2, "own (total) time")):
        print(f"\n### Top {top} by {title}\n")
        print("| function | calls per iteration | own ms/iter | cumulative ms/iter | share |")
        print("|---|---|---|---|---|")
        for func, value in sorted(entries.items(), key=lambda e: -e[1][key])[:top]:
            cc, nc, tt, ct, _ = value
            print(
                f"| {describe(func)} | {nc / n:g} | {1000 * tt / n:.3f} | {1000 * ct / n:.3f} "
                f"| {100 * value[key] / total:.1f}% |"
            )


def describe(func) -> str:
    path, line, name = func
    if path == "~":
        return f"`{name}`"
    for prefix in (EXAMPLE + os.sep, ROOT + os.sep):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    else:
        parts = path.split(os.sep)
        path = (
            os.sep.join(parts[parts.index("site-packages") + 1 :])
            if "site-packages" in parts
            else path
        )
    return f"`{name}` ({path}:{line})"


def parse_lengths(items, parser):
    lengths = {s: spec[2] for s, spec in SIZES.items()}
    for item in items or []:
        size, _, pair = item.partition("=")
        try:
            short, long = (int(x) for x in pair.split(","))
            assert size in SIZES and 0 < short < long
        except (ValueError, AssertionError):
            parser.error(
                f"--lengths {item}: give SIZE=SHORT,LONG with 0 < SHORT < LONG, "
                f"SIZE one of {', '.join(SIZES)}"
            )
        lengths[size] = (short, long)
    return lengths


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--minimal-worker":
        return minimal_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:])
    if len(sys.argv) > 1 and sys.argv[1] == "--profile-worker":
        return profile_worker(sys.argv[2], sys.argv[3], sys.argv[4:])
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--sizes",
        default=",".join(SIZES),
        help=f"comma-separated, of: {','.join(SIZES)} (default: all)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--lengths",
        action="append",
        metavar="SIZE=SHORT,LONG",
        help="run lengths in generator iterations, e.g. CIFAR-10=10,30; "
        "defaults: " + ", ".join(f"{s}={a},{b}" for s, (_, _, (a, b)) in SIZES.items()),
    )
    parser.add_argument(
        "--mnist",
        default=DEFAULT_MNIST,
        help="a directory with MNIST idx files (or mnist.pkl.gz); default "
        "../shared/data/mnist beside the repository, the row skipped if absent",
    )
    parser.add_argument("--cifar", help="cifar-10-python.tar.gz (default: a small synthetic one)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SIZE:KEY=VALUE",
        help="a setting of both programs at SIZE (MODEL.*, TRAIN.*, LOSS.*), "
        "e.g. CIFAR-10:MODEL.dim_g=8 for a quick check of the plumbing",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile ours at the tiny size (cProfile, host reads)",
    )
    parser.add_argument("--top", type=int, default=25, help="functions the profile lists")
    parser.add_argument("--keep", action="store_true", help="keep the temporary files")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in SIZES:
            parser.error(f"--sizes: {s} is none of {', '.join(SIZES)}")
    if "MNIST" in sizes and not os.path.exists(args.mnist):
        print(f"MNIST row skipped: {args.mnist} does not exist (give --mnist DIR)", file=sys.stderr)
        sizes.remove("MNIST")
    if not sizes:
        sys.exit("nothing to measure")
    lengths, extra = parse_lengths(args.lengths, parser), {}
    for item in args.set:
        size, _, setting = item.partition(":")
        if (
            size not in SIZES
            or not setting.startswith(("MODEL.", "TRAIN.", "LOSS."))
            or "=" not in setting
        ):
            parser.error(f"--set {item}: give SIZE:KEY=VALUE, KEY under MODEL, TRAIN or LOSS")
        extra.setdefault(size, []).append(setting)
    bench = Benchmark(args)  # its temporary folder, removed at the end
    bench.lengths, bench.extra = lengths, extra
    start = time.time()
    try:
        bench.prepare_data(sizes)
        results = bench.measure(sizes, bench.lengths)
        print("# Step overhead: ms per generator iteration, ours vs a minimal Paddle loop\n")
        print(
            f"machine: {machine()}; median of {args.repeats} round(s), each time the "
            f"difference of two run lengths; {time.time() - start:.0f} s in all\n"
        )
        print(
            "| size | iterations (short, long) | ours ms/iter | minimal ms/iter | ratio "
            "| ours, all rounds | minimal, all rounds | ours / minimal, whole-process |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for size in sizes:
            r = results[size]
            ours, minimal = statistics.median(r["ours"]), statistics.median(r["minimal"])
            wall = statistics.median(r["ours_wall"]) / statistics.median(r["minimal_wall"])
            print(
                f"| {size} | {bench.lengths[size][0]}, {bench.lengths[size][1]} | {ours:.2f} "
                f"| {minimal:.2f} | {ours / minimal:.2f}x "
                f"| {', '.join(f'{v:.2f}' for v in r['ours'])} "
                f"| {', '.join(f'{v:.2f}' for v in r['minimal'])} | {wall:.2f}x |"
            )
        print(
            "\nours: the training loop's own clock (losses.json); whole-process: the same "
            "difference of wall times, start-up cancelled.\n\ncommands (the long run's; the "
            "short run differs in TRAIN.iters_per_epoch / the count):\n"
        )
        for (size, program), command in bench.commands.items():
            print(f"- {size}, {program}: `{shlex.join(command)}`")
        if args.profile:
            profile(bench, args.top)
    finally:
        if not args.keep:
            shutil.rmtree(bench.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
