"""Fingerprints of short fixed-seed runs of the three examples, to show that a change to the
code leaves every result bit for bit as it was (a refactoring, a faster step).

    python benchmarks/fingerprint.py --out before.json          # on the old code
    python benchmarks/fingerprint.py --out after.json           # on the new code
    python benchmarks/fingerprint.py --compare before.json after.json

Each run trains a few iterations (one and two processes, every LOSS.kind, a resume, a
time-budget run with TRAIN.replan=false), then evaluates, exports and infers where the
example does. A fingerprint is the SHA-256 of each result: the weights' arrays, losses.json
and metrics.json without their timings, samples.npz's arrays and the PNG files. A
time-budget run's plan follows the machine's pace, so it is replayed as a plain run of the
length it planned (TRAIN.epochs, TRAIN.iters_per_epoch), which must end with the same files,
and compared with the other version's only where both plans were the same. The runs use one
fixed folder (--work), so paths that results mention are the same in both versions.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples", "wgangp")
sys.path.insert(0, os.path.join(ROOT, "tests"))

TIMINGS = ("seconds", "iters_per_second", "epoch_seconds")
TOY = [
    "TRAIN.epochs=2",
    "TRAIN.iters_per_epoch=10",
    "MODEL.hidden_size=64",
    "TRAIN.batch_size=64",
    "EVAL.num_samples=200",
    "TRAIN.metric_samples=200",
    "log_freq=5",
]
MNIST = [
    "TRAIN.epochs=2",
    "TRAIN.iters_per_epoch=3",
    "MODEL.dim=4",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=16",
    "EVAL.classifier_epochs=1",
    "EVAL.num_samples=100",
    "EVAL.batch_size=50",
    "TRAIN.metric_samples=100",
    "TRAIN.dev_freq=2",
    "TRAIN.dev_samples=32",
]
CIFAR = [
    "TRAIN.epochs=2",
    "TRAIN.iters_per_epoch=2",
    "MODEL.dim_g=8",
    "MODEL.dim_d=8",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=8",
    "TRAIN.generator_batch_size=16",
    "EVAL.num_samples=40",
    "EVAL.batch_size=20",
    "DATA.md5=null",
    "TRAIN.dev_freq=2",
    "TRAIN.dev_samples=16",
]
CUSTOM = [
    "MODEL.dim_g=8",
    "MODEL.dim_d=8",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=8",
    "TRAIN.generator_batch_size=16",
    "TRAIN.n_critic=2",
    "TRAIN.epochs=2",
    "TRAIN.iters_per_epoch=2",
    "TRAIN.metric_samples=16",
    "TRAIN.final_eval_samples=32",
    "EVAL.num_samples=32",
    "EVAL.batch_size=16",
]


def budget_replay(work: str) -> list:
    """The overrides that repeat toy_budget's plan without a budget."""
    with open(os.path.join(work, "toy_budget", "losses.json")) as f:
        last = json.load(f)[-1]
    return [
        *TOY,
        "TRAIN.lr_decay=true",
        f"TRAIN.epochs={last['epoch']}",
        f"TRAIN.iters_per_epoch={last['iteration'] // last['epoch']}",
    ]


def runs(data: dict, work: str) -> list:
    """(name, script, overrides, processes) of every run, in order (later ones read earlier;
    overrides may be a function of the work folder, called when the run starts)."""

    def d(name):
        return os.path.join(work, name)

    no_inception = f"EVAL.inception_weights={d('none.pdparams')}"
    mnist = [*MNIST, f"DATA.data_path={data['mnist']}"]
    cifar = [*CIFAR, f"DATA.data_path={data['cifar']}", no_inception]
    own = [*CUSTOM, f"EVAL.stats_dir={d('stats')}", no_inception]
    images = [*own, f"DATA.data_path={data['images']}"]
    fields = [*own, f"DATA.data_path={data['fields']}", "DATA.key=u", "DATA.resolution=64"]
    return [
        ("toy", "wgangp_toy.py", TOY, 1),
        ("toy_wgan", "wgangp_toy.py", [*TOY, "LOSS.kind=wgan"], 1),
        ("toy_decay", "wgangp_toy.py", [*TOY, "TRAIN.lr_decay=true"], 1),
        ("toy_first_epoch", "wgangp_toy.py", [*TOY, "TRAIN.epochs=1"], 1),
        (
            "toy_resumed",
            "wgangp_toy.py",
            [*TOY, f"TRAIN.checkpoint_path={d('toy_first_epoch')}/checkpoints/latest"],
            1,
        ),
        ("toy_two_processes", "wgangp_toy.py", TOY, 2),
        (
            "toy_budget",
            "wgangp_toy.py",
            [*TOY, "TRAIN.minutes=0.4", "TRAIN.replan=false", "TRAIN.lr_decay=true"],
            1,
        ),
        ("toy_budget_replay", "wgangp_toy.py", budget_replay, 1),
        (
            "toy_eval",
            "wgangp_toy.py",
            [
                "mode=eval",
                *TOY,
                f"EVAL.pretrained_gen_model_path={d('toy')}/model_generator.pdparams",
                f"EVAL.pretrained_dis_model_path={d('toy')}/model_discriminator.pdparams",
            ],
            1,
        ),
        (
            "toy_export",
            "wgangp_toy.py",
            [
                "mode=export",
                *TOY,
                f"INFER.pretrained_model_path={d('toy')}/model_generator.pdparams",
                f"INFER.export_path={d('toy_export')}/inference/toy",
            ],
            1,
        ),
        (
            "toy_infer",
            "wgangp_toy.py",
            ["mode=infer", *TOY, f"INFER.export_path={d('toy_export')}/inference/toy"],
            1,
        ),
        ("mnist", "wgangp_mnist.py", mnist, 1),
        ("mnist_wgan", "wgangp_mnist.py", [*mnist, "LOSS.kind=wgan"], 1),
        ("mnist_dcgan", "wgangp_mnist.py", [*mnist, "LOSS.kind=dcgan"], 1),
        ("mnist_ema", "wgangp_mnist.py", [*mnist, "TRAIN.ema_decay=0.9", "TRAIN.ema_start=0"], 1),
        ("mnist_two_processes", "wgangp_mnist.py", mnist, 2),
        (
            "mnist_eval",
            "wgangp_mnist.py",
            [
                "mode=eval",
                *mnist,
                f"EVAL.pretrained_gen_model_path={d('mnist')}/model_generator.pdparams",
            ],
            1,
        ),
        ("cifar10", "wgangp_cifar10.py", cifar, 1),
        ("cifar10_unconditional", "wgangp_cifar10.py", [*cifar, "MODEL.conditional=false"], 1),
        ("cifar10_two_processes", "wgangp_cifar10.py", cifar, 2),
        *exported("mnist", "wgangp_mnist.py", mnist, d),
        *exported("cifar10", "wgangp_cifar10.py", cifar, d),
        ("custom_images", "wgangp_custom.py", images, 1),
        ("custom_fields", "wgangp_custom.py", fields, 1),
        ("custom_two_processes", "wgangp_custom.py", [*images, "MODEL.bn_groups=2"], 2),
        (
            "custom_eval",
            "wgangp_custom.py",
            [
                "mode=eval",
                *images,
                f"EVAL.pretrained_gen_model_path={d('custom_images')}/model_generator.pdparams",
            ],
            1,
        ),
        *exported("custom_fields", "wgangp_custom.py", fields, d),
    ]


def exported(trained: str, script: str, settings: list, d) -> list:
    """Export the generator of the run `trained`, and infer with the export."""
    export_path = f"INFER.export_path={d(trained + '_export')}/inference/model"
    weights = f"INFER.pretrained_model_path={d(trained)}/model_generator.pdparams"
    return [
        (f"{trained}_export", script, ["mode=export", *settings, weights, export_path], 1),
        (f"{trained}_infer", script, ["mode=infer", *settings, export_path], 1),
    ]


def digest(value) -> str:
    h = hashlib.sha256()
    if isinstance(value, dict):
        for key in sorted(value):
            h.update(key.encode())
            h.update(digest(value[key]).encode())
    elif isinstance(value, np.ndarray):
        h.update(str(value.dtype).encode() + str(value.shape).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, bytes):
        h.update(value)
    else:
        h.update(json.dumps(value, sort_keys=True).encode())
    return h.hexdigest()[:16]


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def fingerprint(run_dir: str) -> dict:
    import paddle

    out = {}
    for top, _, names in os.walk(run_dir):
        for name in sorted(names):
            path = os.path.join(top, name)
            key = os.path.relpath(path, run_dir)
            if key.startswith(("checkpoints", "replicas", "launch_logs")):
                continue
            if name.endswith(".pdparams"):
                out[key] = digest(
                    {
                        k: np.asarray(v.numpy() if hasattr(v, "numpy") else v)
                        for k, v in paddle.load(path).items()
                    }
                )
            elif name.endswith(".json") and name != "wgangp_toy.json":
                with open(path) as f:
                    out[key] = digest(without_timings(json.load(f)))
            elif name.endswith(".npz"):
                with np.load(path) as z:
                    out[key] = digest({k: z[k] for k in z.files})
            elif name.endswith((".png", ".pdiparams")):
                with open(path, "rb") as f:
                    out[key] = digest(f.read())
    if os.path.exists(os.path.join(run_dir, "losses.json")):
        with open(os.path.join(run_dir, "losses.json")) as f:
            last = json.load(f)[-1]
        out["plan"] = f"{last['epoch']} epochs, iteration {last['iteration']}"
    return out


def measure(out_file: str, work: str) -> None:
    from cifar_files import write_tarball
    from mnist_files import write_idx_dir
    from own_files import image_folder, npz

    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = {
        "mnist": write_idx_dir(os.path.join(work, "mnist")) or os.path.join(work, "mnist"),
        "cifar": write_tarball(os.path.join(work, "cifar-10-python.tar.gz")),
        "images": image_folder(os.path.join(work, "images")),
        "fields": npz(os.path.join(work, "fields.npz")),
    }
    env = dict(os.environ, PYTHONWARNINGS="ignore", MKL_NUM_THREADS="1")
    results = {}
    for name, script, overrides, processes in runs(data, work):
        run_dir = os.path.join(work, name)
        overrides = overrides(work) if callable(overrides) else overrides
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
        command = [
            sys.executable,
            *launcher,
            os.path.join(EXAMPLES, script),
            *overrides,
            f"hydra.run.dir={run_dir}",
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=work)
        if result.returncode != 0:
            sys.exit(f"{name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        results[name] = fingerprint(run_dir)
        print(f"{name}: {len(results[name])} files", flush=True)
    replay = {
        k: v
        for k, v in results["toy_budget_replay"].items()  # the budget's log has its plan
        if k.endswith((".pdparams", ".npz")) or k == "metrics.json"
    }
    budget = {k: results["toy_budget"].get(k) for k in replay}
    print(
        "toy_budget ends as a plain run of its plan: "
        + ("yes" if replay == budget else f"NO ({[k for k in replay if replay[k] != budget[k]]})")
    )
    with open(out_file, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    print(f"fingerprints of {len(results)} runs in {out_file} (runs in {work})")


def compare(before_file: str, after_file: str) -> int:
    with open(before_file) as f:
        before = json.load(f)
    with open(after_file) as f:
        after = json.load(f)
    print("| run | files | identical | differing |\n|---|---|---|---|")
    failed = 0
    for name in before:
        a, b = before[name], after.get(name, {})
        if a.get("plan") != b.get("plan") and "budget" in name:
            print(f"| {name} | - | plans differ ({a.get('plan')} / {b.get('plan')}) | - |")
            continue
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        failed += bool(differing)
        print(f"| {name} | {len(a)} | {len(a) - len(differing)} | {', '.join(differing) or '-'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="measure and write the fingerprints here")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument(
        "--work",
        default=os.path.join(tempfile.gettempdir(), "wgangp_fingerprint"),
        help="the runs' folder, emptied first (default: %(default)s)",
    )
    args = parser.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    measure(args.out or "fingerprints.json", args.work)
