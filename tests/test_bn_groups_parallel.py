"""MODEL.bn_groups under data parallelism: 2 processes with one batch-norm group each
train the CIFAR-10 models to what 1 process with 2 groups computes (running averages
included, after their per-epoch averaging), and bn_groups that cannot be shared by the
processes is refused in one line."""

import re

import numpy as np
import test_data_parallel as dp
from cifar_files import write_tarball


def test_cifar10_two_processes_equal_one_process_with_two_groups(tmp_path):
    data = write_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    outs = {}
    for processes in (2, 1):
        outs[processes] = tmp_path / f"p{processes}"
        result = dp.run(
            "wgangp_cifar10.py",
            outs[processes],
            *dp.CIFAR,
            "TRAIN.epochs=1",
            "TRAIN.iters_per_epoch=1",
            "MODEL.bn_groups=2",
            f"DATA.data_path={data}",
            f"EVAL.inception_weights={tmp_path}/none.pdparams",
            processes=processes,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    dp.assert_trained_replicas_identical(outs[2])
    for name in ("generator", "critic"):
        two, one = dp.replica(outs[2], 0, "final", name), dp.replica(outs[1], 0, "final", name)
        for key in two:
            # a bias right before a batch norm has gradient 0 up to rounding, which Adam
            # turns into steps of about the learning rate: these differ by ~2e-4 either way
            if name == "generator" and re.fullmatch(
                r"net\.(fc|blocks\.\d\.(conv1|conv2|shortcut))\.bias", key
            ):
                continue
            # so does any single weight whose gradient happens to be near 0: Adam's first
            # step is about +-lr (2e-4) whatever the gradient's size, so an element may differ
            # by up to 2 lr per step (5 steps here); all but a few must agree to rounding
            off = np.abs(two[key] - one[key]) > 1e-5
            assert off.mean() <= 0.01, f"{name}.{key}: {off.sum()} of {off.size} differ"
            assert np.abs(two[key] - one[key]).max() <= 2 * 2e-4 * 5, f"{name}.{key}"


def test_groups_that_processes_cannot_share_are_refused(tmp_path):
    data = write_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    result = dp.run(
        "wgangp_cifar10.py", tmp_path, *dp.CIFAR, "MODEL.bn_groups=3", f"DATA.data_path={data}"
    )
    assert result.returncode == 2
    assert (
        "ERROR: MODEL.bn_groups: bn_groups=3 cannot be shared by 2 processes"
        in result.stdout + result.stderr
    )
