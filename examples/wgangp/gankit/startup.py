"""Run start-up: one-line errors for bad settings and run directories, before ppsci's own set-up.

Hydra calls InitCallback, named in each config's hydra.callbacks.
"""

import contextlib
import logging
import os
import re
import shutil
from os import path as osp

import paddle
import paddle.distributed as dist
from omegaconf import open_dict, read_write
from ppsci.utils import callbacks as ppsci_callbacks
from ppsci.utils import logger

from . import command_line, cpu, datasets, download, inference, parallel, schema, signals, solvers
from .errors import UsageError
from .files import shell_word
from .last_resort import guard

TOY_W1_MOST = 10000  # toy points whose exact W1 fits: 0.8 GB of distances, about a minute

# ppsci switches these examples do not implement, with the values they accept and the reason
UNSUPPORTED = {
    "use_amp": (
        (False,),
        "mixed precision is not supported here (the gradient penalty's "
        "double backward needs float32)",
    ),
    "amp_level": (("O1",), "mixed precision is not supported here"),
    "to_static": (
        (False,),
        "static-graph training is not supported here (the gradient "
        "penalty's double backward runs in dynamic mode)",
    ),
    "prim": ((False,), "prim mode is not supported here"),
    "TRAIN.update_freq": (
        (1,),
        "gradient accumulation is not supported here; give a larger TRAIN.batch_size instead",
    ),
    "TRAIN.pretrained_model_path": (
        (None,),
        "not used here; to continue a run use TRAIN.checkpoint_path",
    ),
    "TRAIN.ema.use_ema": ((False,), "a moving average of the weights is not supported here"),
    "TRAIN.swa.use_swa": ((False,), "stochastic weight averaging is not supported here"),
    "EVAL.compute_metric_by_batch": (
        (False,),
        "not possible: the metrics need all samples at once",
    ),
    "INFER.engine": (
        ("native", "onnx"),
        "use native or onnx (TensorRT and oneDNN inference are not supported here)",
    ),
    "INFER.precision": (("fp32",), "inference in other precisions than fp32 is not supported here"),
    "INFER.max_batch_size": ((1024,), "a TensorRT setting, and TensorRT is not supported here"),
    "INFER.min_subgraph_size": ((30,), "a TensorRT setting, and TensorRT is not supported here"),
}


def _setting(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node.get(part) if hasattr(node, "get") else None
    return node


def _check_toy_samples(cfg) -> None:
    samples = _setting(cfg, "EVAL.num_samples")
    if _setting(cfg, "DATA.mode") and samples and samples > TOY_W1_MOST:  # the toy's
        raise UsageError(
            f"EVAL.num_samples={samples}: the exact W1 to real points is an assignment over "
            f"an N x N distance matrix (memory N^2, time N^3); give at most {TOY_W1_MOST}."
        )


def check_config(cfg):
    """Check the settings before anything runs: ppsci's switches these examples do not
    implement, every setting's type, choices and range (schema.py), and what depends on
    the machine and the processes; returns the settings as the schema read them."""
    kinds = tuple(cfg.get("PAPER") or ())  # the LOSS.kinds whose settings the config lists
    kind = _setting(cfg, "LOSS.kind")
    if kinds and kind not in kinds:  # before anything reads TRAIN, whose values it selects
        raise UsageError(
            f"LOSS.kind={kind!r}: use {', '.join(kinds)} (the paper's modes this example has)."
        )
    for key, (accepted, reason) in UNSUPPORTED.items():
        value = _setting(cfg, key)
        if value is not None and value not in accepted:
            raise UsageError(f"{key}={value}: {reason}.")
    settings = schema.check(cfg)
    if _setting(cfg, "TRAIN.optimizer") == "adam":
        for key in ("TRAIN.beta1", "TRAIN.beta2"):
            if _setting(cfg, key) is None:
                raise UsageError(
                    f"{key} is null, and Adam (TRAIN.optimizer=adam) needs it; "
                    f"give {key}=... (the paper: beta1 0.5, beta2 0.9)."
                )
    processes = dist.get_world_size()
    for key in ("TRAIN.batch_size", "TRAIN.generator_batch_size"):
        value = _setting(cfg, key)
        if value is not None and value % processes:
            raise UsageError(
                f"{key}={value} is the global batch and must divide evenly over "
                f"the {processes} processes; give a multiple of {processes}."
            )
    on_cpu = cfg.get("device") == "cpu" or not paddle.is_compiled_with_cuda()
    if (
        processes > 1
        and on_cpu
        and _setting(cfg, "EVAL.inception")
        and _setting(cfg, "TRAIN.eval_during_train")
        and _setting(cfg, "DATA.resolution") is None  # own data: Inception at the end only
    ):
        # gloo, CPU data parallelism's backend, drops a process that waits 30 s
        raise UsageError(
            "TRAIN.eval_during_train=true: on CPU processes, the Inception "
            "metrics after each epoch outlast the 30 s gloo lets a process wait; "
            "use TRAIN.eval_during_train=false and score the saved weights with "
            "mode=eval."
        )
    _check_toy_samples(cfg)
    if _setting(cfg, "MODEL.architecture") == "paddlescience" and cfg.mode == "train":
        raise UsageError(
            "MODEL.architecture=paddlescience: PaddleScience's published networks "
            "are for evaluating its weights (mode=eval or export); training uses "
            "the paper's networks."
        )
    if cfg.get("device") == "gpu" and not paddle.is_compiled_with_cuda():
        raise UsageError(
            "device=gpu, but this PaddlePaddle build has no CUDA: install paddlepaddle-gpu "
            "(see README) or use device=cpu."
        )
    return settings


def resolve_generator_alias(cfg) -> None:
    """EVAL.pretrained_model_path, the key PaddleScience's pages use, names the generator."""
    alias = _setting(cfg, "EVAL.pretrained_model_path")
    own = _setting(cfg, "EVAL.pretrained_gen_model_path")
    if not alias:
        return
    if own and own != alias:
        raise UsageError(
            f"EVAL.pretrained_model_path={alias} and EVAL.pretrained_gen_model_path="
            f"{own} disagree; give the generator's weights once, as "
            "EVAL.pretrained_gen_model_path."
        )
    cfg.EVAL.pretrained_gen_model_path = alias


RUN_OUTPUTS = (
    "model_generator.pdparams",
    "model_discriminator.pdparams",
    "checkpoints",
    "metrics.json",
    "samples.npz",
    "losses.json",
)
CLAIM = ".wgangp_run"  # created exclusively by the run that owns the directory
_created_dirs = []  # directories this run created, removed again if it fails at the start


def claim_run_dir(run_dir: str) -> None:
    """Make the run directory this run's alone: writable, holding no earlier run's results,
    and claimed atomically, so two runs started at once never write into one directory."""
    missing, parent = [], osp.abspath(run_dir)
    while not osp.exists(parent):
        missing.append(parent)
        parent = osp.dirname(parent)
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = osp.join(run_dir, ".write_test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise UsageError(
            f"hydra.run.dir={run_dir} is not a writable directory ({e.strerror}); "
            "give another with hydra.run.dir=..."
        ) from None
    _created_dirs[:] = missing
    earlier = [name for name in RUN_OUTPUTS if osp.exists(osp.join(run_dir, name))]
    if earlier:
        raise UsageError(
            f"hydra.run.dir={run_dir} already holds an earlier run ({earlier[0]}); "
            "give a new directory (a run resumes from TRAIN.checkpoint_path)."
        )
    try:
        with open(osp.join(run_dir, CLAIM), "x") as f:
            f.write(f"{os.getpid()}\n")
    except FileExistsError:
        raise UsageError(
            f"hydra.run.dir={run_dir} belongs to another run (started in the same "
            "second, or stopped before writing results); start again or give "
            "hydra.run.dir=..."
        ) from None


def _remove_failed_start(run_dir: str, mode: str) -> None:
    """Remove what a run that stopped before writing any result left: its claim, config
    copy (.hydra), empty log, and the directories it created."""
    logs = re.compile(rf"^{mode}(\.rank\d+)?\.log$")  # the other processes' own logs too
    for folder, _, names in os.walk(run_dir):
        inside = osp.relpath(folder, run_dir)
        if inside == ".hydra" or inside.startswith(".hydra" + os.sep):
            continue
        if any(inside != "." or (name != CLAIM and not logs.match(name)) for name in names):
            return  # results (or someone else's files) are there: keep everything
    for handler in list(logging.getLogger("ppsci").handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            logging.getLogger("ppsci").removeHandler(handler)
    shutil.rmtree(run_dir, ignore_errors=True)
    for directory in _created_dirs:  # deepest first
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # only while empty


@contextlib.contextmanager
def run_directory(cfg):
    """Say where the run's files go, first and last, and which CPU math runs; a run that
    stops on a bad setting or file, or by a signal, before writing any result leaves no
    directory behind."""
    run_dir = osp.abspath(cfg.output_dir)
    try:  # a signal while the first line is written is a stop in start-up too
        logger.info(f"Run directory: {shell_word(run_dir)}")
        logger.info(f"CPU math: {cpu.use_fast_cpu_math()}")
        yield run_dir
    except SystemExit:
        if parallel.is_main_process():
            _remove_failed_start(run_dir, cfg.mode)
        raise
    where = (
        f"{shell_word(osp.abspath(cfg.INFER.export_path) + '.json')} / .pdiparams"
        if cfg.mode == "export"
        else shell_word(run_dir)
    )
    logger.info(f"Done; the results are in {where}")


def join_processes(config) -> None:
    """Start the process group and make every process use rank 0's run directory
    (each resolved its own ${now:...}, which can differ by a second)."""
    if config.mode != "train":
        raise UsageError(
            f"mode={config.mode} runs in one process; start it without paddle.distributed.launch."
        )
    dist.init_parallel_env()
    run_dir = [str(config.hydra.run.dir)]
    dist.broadcast_object_list(run_dir, src=0)
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.run.dir = run_dir[0]
        if not parallel.is_main_process():
            config.hydra.output_subdir = None  # rank 0 saves the config


class InitCallback(ppsci_callbacks.InitCallback):
    """ppsci's start-up (config schema, seed, logger, device) after our one-line checks."""

    @guard
    def on_run_start(self, config, **kwargs) -> None:
        signals.install()  # first: under the launcher, a stop for another's error (launch_status)
        if dist.get_world_size() > 1:
            join_processes(config)
        settings = check_config(config)
        inference.check_onnx(config)  # the packages mode=export INFER.onnx=true needs
        command_line.check_added(config)
        with read_write(config), open_dict(config):
            resolve_generator_alias(config)
            schema.as_read(config, settings)  # TRAIN.learning_rate=1: a float
        if parallel.is_main_process():
            claim_run_dir(str(config.hydra.run.dir))  # before Hydra creates and writes to it

    @guard
    def on_job_start(self, config, **kwargs) -> None:
        super().on_job_start(config, **kwargs)
        solvers.set_up_lines_once()  # a script builds several Solvers
        if not parallel.is_main_process():
            parallel.log_to_own_file(config)
        download.configure(config.download_timeout)
        datasets.use_settings(config.DATA)  # where an unset DATA.data_path downloads from
        signals.install()  # again: ppsci's and Paddle's set-up may have put their own back
