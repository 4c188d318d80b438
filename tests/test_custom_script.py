"""wgangp_custom.py on a user's own data, run as typed: an image folder and an .npy, .npz,
.h5 and .mat file, at 32x32 and 64x64; train, eval, export and infer; samples in the
data's own units; bad data in one line."""

import json
import os

import numpy as np
import own_files
import pytest
from test_as_typed import printed_run_dir, script, shell

from conftest import one_error_line, run_script

SMALL = (
    "MODEL.dim_g=8 MODEL.dim_d=8 MODEL.noise_dim=16 TRAIN.batch_size=8 "
    "TRAIN.generator_batch_size=16 TRAIN.n_critic=2 TRAIN.epochs=1 TRAIN.iters_per_epoch=2 "
    "TRAIN.metric_samples=16 TRAIN.final_eval_samples=32 EVAL.num_samples=32 "
    "EVAL.batch_size=16 log_freq=1"
)
FIELD_METRICS = ("swd", "value_w1", "spectrum_error")


def custom(args: str, tmp_path) -> str:
    """Run wgangp_custom.py as typed, its statistics cache in the test's folder."""
    return shell(f"{script('wgangp_custom.py')} {args} EVAL.stats_dir={tmp_path}/stats", tmp_path)


def metrics_of(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "metrics.json")) as f:
        return json.load(f)


def samples_of(run_dir: str) -> np.ndarray:
    with np.load(os.path.join(run_dir, "samples.npz")) as f:
        return f["samples"]


def assert_field_metrics(metrics: dict, n: int):
    assert metrics["num_samples"] == n
    for name in FIELD_METRICS:
        assert np.isfinite(metrics[name]) and metrics[name] >= 0, name
        assert np.isfinite(metrics[f"{name}_floor"]), name


def test_round_trip_on_an_image_folder_as_typed(tmp_path):
    folder = own_files.image_folder(str(tmp_path / "my images"))  # a space, as users' have
    data = f"'DATA.data_path={folder}'"
    out = custom(f"{data} {SMALL}", tmp_path)
    run = printed_run_dir(out)
    assert "24 images in 2 class(es)" in out  # the reader's summary line
    trained = metrics_of(run)
    assert_field_metrics(trained, 32)
    assert trained["architecture"] == "paper"
    assert os.path.isfile(os.path.join(run, "plots", "epoch_0001.png"))
    assert os.path.isfile(os.path.join(run, "samples.png"))
    samples = samples_of(run)  # RGB in the images' units, 0..255
    assert samples.shape == (32, 3, 32, 32) and 0 <= samples.min() and samples.max() <= 255

    # eval with the batch norms' running averages: the exported model's own sampling
    weights = f"{run}/model_generator.pdparams"
    out = custom(
        f"mode=eval {data} EVAL.pretrained_gen_model_path={weights} {SMALL} "
        "EVAL.sample_norm=running",
        tmp_path,
    )
    evaluated = printed_run_dir(out)
    assert_field_metrics(metrics_of(evaluated), 32)
    out = custom(f"mode=export INFER.pretrained_model_path={weights} {SMALL}", tmp_path)
    out = custom(f"mode=infer {data} {SMALL}", tmp_path)
    inferred = printed_run_dir(out)
    assert_field_metrics(metrics_of(inferred), 32)
    # the exported model gives the same samples, in the data's units, as the weights
    np.testing.assert_allclose(
        samples_of(inferred), samples_of(evaluated), rtol=1e-4, atol=1e-3 * 255
    )


def raw_values(kind: str, path: str) -> np.ndarray:
    """The file's array as its reader would see it, N x C x H x W, read independently."""
    import h5py
    import scipy.io

    if kind == "npy":
        x = np.load(path)
    elif kind == "npz":
        x = np.load(path)["u"]
    elif kind == "mat":
        x = scipy.io.loadmat(path)["T"]
    else:
        with h5py.File(path, "r") as f:
            x = f["fields/u"][()]
    return x[:, None] if x.ndim == 3 else x


@pytest.mark.parametrize(
    "kind, settings",
    [
        ("npy", "DATA.resolution=32"),
        ("npz", "DATA.resolution=64 DATA.key=u"),
        ("h5", "DATA.resolution=64 DATA.key=fields/u DATA.resize=true"),
        ("mat", "DATA.resolution=32 DATA.key=T"),
    ],
)
def test_array_files_train_and_sample_in_their_units(kind, settings, tmp_path):
    path = getattr(own_files, kind)(str(tmp_path / f"data.{kind}"))
    out = custom(f"DATA.data_path={path} {settings} {SMALL}", tmp_path)
    run = printed_run_dir(out)
    assert "memory-mapped" in out if kind in ("npy", "npz") else "memory-mapped" not in out
    resolution = int(settings.split("DATA.resolution=")[1].split()[0])
    raw = raw_values(kind, path)
    assert_field_metrics(metrics_of(run), 32)
    samples = samples_of(run)
    assert samples.shape == (32, raw.shape[1], resolution, resolution)
    # generated in [-1, 1] by a tanh and mapped back per channel: inside each channel's range
    # of the data, in its units (the .npy's around 5, the .mat's in the hundreds, the others
    # within +-0.3)
    for c in range(raw.shape[1]):
        assert raw[:, c].min() <= samples[:, c].min() and samples[:, c].max() <= raw[:, c].max()
    assert np.ptp(samples) > 0  # (samples in [-1, 1] would leave every range above)
    if kind == "h5":  # eval reads the network's size from the weights: no MODEL settings
        out = custom(
            f"mode=eval DATA.data_path={path} DATA.key=fields/u DATA.resize=true "
            f"EVAL.pretrained_gen_model_path={run}/model_generator.pdparams EVAL.num_samples=32",
            tmp_path,
        )
        assert "Reference statistics of the data" in out
        assert_field_metrics(metrics_of(printed_run_dir(out)), 32)
    if kind == "npz":  # so does export; the exported model samples in the data's units
        custom(f"mode=export INFER.pretrained_model_path={run}/model_generator.pdparams", tmp_path)
        line = one_error_line(  # the run's noise size, not the config's default
            run_script(
                "wgangp_custom.py",
                "mode=infer",
                f"DATA.data_path={path}",
                *settings.split(),
                cwd=tmp_path,
            )
        )
        assert "does not take noise of MODEL.noise_dim=128" in line
        out = custom(
            f"mode=infer DATA.data_path={path} {settings} EVAL.num_samples=32 MODEL.noise_dim=16",
            tmp_path,
        )
        inferred = samples_of(printed_run_dir(out))
        assert inferred.shape == (32, 2, 64, 64)
        for c in range(2):
            assert raw[:, c].min() <= inferred[:, c].min()
            assert inferred[:, c].max() <= raw[:, c].max()


def test_bad_data_stops_in_one_line_before_training(tmp_path):
    path = own_files.npz(str(tmp_path / "two.npz"))
    line = one_error_line(run_script("wgangp_custom.py", f"DATA.data_path={path}", cwd=tmp_path))
    assert "DATA.key" in line and "u (24, 2, 64, 64)" in line and "mean (24, 2)" in line
    line = one_error_line(
        run_script("wgangp_custom.py", f"DATA.data_path={path}", "DATA.key=v", cwd=tmp_path)
    )
    assert "DATA.key=v" in line and "u" in line

    bad = own_files.fields(20, 32)
    bad[7, 0, 3, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    line = one_error_line(
        run_script("wgangp_custom.py", f"DATA.data_path={tmp_path}/nan.npy", cwd=tmp_path)
    )
    assert "nan.npy" in line and "7" in line and "NaN" in line

    few = own_files.npy(str(tmp_path / "few.npy"), n=5)
    line = one_error_line(run_script("wgangp_custom.py", f"DATA.data_path={few}", cwd=tmp_path))
    assert "5 samples" in line and "TRAIN.batch_size=64" in line

    line = one_error_line(run_script("wgangp_custom.py", cwd=tmp_path))
    assert "DATA.data_path is not set" in line
    assert not os.path.exists(tmp_path / "outputs_wgangp_custom") or not any(
        f.endswith(".pdparams")
        for _, _, fs in os.walk(tmp_path / "outputs_wgangp_custom")
        for f in fs
    )


def test_two_processes_train_one_model_and_a_stopped_run_resumes(tmp_path):
    from test_data_parallel import (
        assert_rank_0_alone_wrote_files,
        assert_trained_replicas_identical,
        run,
    )

    path = own_files.npy(str(tmp_path / "fields.npy"), n=32)
    settings = [f"DATA.data_path={path}", *SMALL.split(), f"EVAL.stats_dir={tmp_path}/stats"]
    settings.append("MODEL.bn_groups=2")  # each process normalises its half of a batch
    two = tmp_path / "two"
    result = run("wgangp_custom.py", two, *settings)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_trained_replicas_identical(two)
    assert_rank_0_alone_wrote_files(two)
    # the run continues from its checkpoint for a second epoch, in one process
    checkpoint = two / "run" / "checkpoints" / "latest"
    more = tmp_path / "more"
    result = run(
        "wgangp_custom.py",
        more,
        *settings,
        "TRAIN.epochs=2",
        f"TRAIN.checkpoint_path={checkpoint}",
        processes=1,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    history = json.loads((more / "run" / "losses.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2] and "swd" in history[1]
