"""Data parallelism under `python -m paddle.distributed.launch`.

Every process draws the same global batch and computes its own rows, both networks'
gradients are averaged, rank 0 writes the files.
"""

import logging
from os import path as osp
from typing import Dict, List

import paddle
import paddle.distributed as dist
from ppsci.utils import logger


def is_main_process() -> bool:
    """True in the process that writes results: rank 0, the only one without a launcher."""
    return dist.get_rank() == 0


def log_to_own_file(config) -> None:
    """Ranks > 0: ppsci logs only their errors, to the console; log everything to
    <run dir>/<mode>.rank<N>.log instead."""
    log = logging.getLogger("ppsci")
    path = osp.join(config.output_dir, f"{config.mode}.rank{dist.get_rank()}.log")
    handler = logging.FileHandler(path)
    handler.setFormatter(
        logging.Formatter(
            "[%(asctime)s] %(name)s %(levelname)s: %(message)s", datefmt="%Y/%m/%d %H:%M:%S"
        )
    )
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def log_every_rank(message: str) -> None:
    """Log on every process (ppsci's logger.info logs on rank 0 only): rank 0 to its
    console and <mode>.log, the others to <mode>.rank<N>.log and their console."""
    logging.getLogger("ppsci").info(message)


def local_rows(batch):
    """This process's rows of a global batch (an array or tensor, or a dict of them).

    Every process draws the same global batch from identically seeded generators and
    keeps its own contiguous share, so N processes compute what one process computes on
    that batch, each on different data and noise, and all random states stay equal (a
    checkpoint holds them for every process).
    """
    if isinstance(batch, dict):
        return {key: local_rows(value) for key, value in batch.items()}
    processes = dist.get_world_size()
    if processes == 1:
        return batch
    rows = batch.shape[0] // processes  # startup.check_config: batch sizes divide evenly
    return batch[dist.get_rank() * rows : (dist.get_rank() + 1) * rows]


def mean_over_processes(values: Dict[str, float]) -> Dict[str, float]:
    """Average the per-process values of a dict of numbers (identity on one process)."""
    processes = dist.get_world_size()
    if processes == 1:
        return values
    total = paddle.to_tensor(list(values.values()), dtype="float64")
    dist.all_reduce(total)
    return dict(zip(values, (total.numpy() / processes).tolist()))


def average_statistics(*layers: paddle.nn.Layer) -> None:
    """Average the state that is not learned by gradients (batch-norm running statistics,
    gathered on each process's rows) over processes, so all processes hold one model."""
    if dist.get_world_size() == 1:
        return
    with paddle.no_grad():
        for layer in layers:
            for tensor in layer.state_dict().values():
                if paddle.is_floating_point(tensor) and not getattr(tensor, "trainable", False):
                    dist.all_reduce(tensor)
                    tensor.scale_(1 / dist.get_world_size())


def max_over_processes(value: int) -> int:
    """The largest of the processes' values (an agreed decision, e.g. to stop here)."""
    if dist.get_world_size() == 1:
        return value
    tensor = paddle.to_tensor([value], dtype="int64")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.numpy()[0])


def barrier() -> None:
    """Wait until every process is here (nothing on one process)."""
    if dist.get_world_size() > 1:
        dist.barrier()


# seconds of training between the processes' agreements on a stop (signal_every)
SIGNAL_CHECK_SECONDS = 1.0


def signal_every(seconds_per_iteration: float) -> int:
    """Generator iterations between the processes' checks for a signal: 1 on one process (a
    flag to read), else as many as take about SIGNAL_CHECK_SECONDS at the slowest process's
    pace (an all-reduce each; the launcher kills its processes 30 s after passing on a
    signal). Every process gets the same number, so all stop at the same iteration."""
    if dist.get_world_size() == 1:
        return 1
    slowest = max_over_processes_of([seconds_per_iteration])[0]
    return max(1, int(SIGNAL_CHECK_SECONDS / max(slowest, 1e-9)))


def max_over_processes_of(values: List[float]) -> List[float]:
    """Each of `values` as its largest over the processes (timings every process plans by)."""
    if dist.get_world_size() == 1:
        return list(values)
    tensor = paddle.to_tensor(list(values), dtype="float64")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.numpy().tolist()


def log_data_parallel(batch_size: int) -> None:
    """Under the launcher: how the processes share the work."""
    if dist.get_world_size() > 1:
        logger.info(
            f"Data parallel on {dist.get_world_size()} processes: each computes its "
            f"share of every global batch (TRAIN.batch_size={batch_size}) and the "
            "learning rate is unchanged, so ppsci's advice above to scale it does not "
            "apply."
        )
