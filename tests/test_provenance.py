"""A checkpoint of one example given to another: refused naming the example it is from (it was
refused with a list of ten differing settings)."""

from mnist_files import write_idx_dir
from test_faults import TOY

from conftest import one_error_line, run_script


def test_a_toy_checkpoint_given_to_mnist_names_the_toy_example(tmp_path):
    toy = tmp_path / "toy"
    result = run_script(
        "wgangp_toy.py", *TOY, "TRAIN.epochs=1", "TRAIN.iters_per_epoch=2", f"hydra.run.dir={toy}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    latest = toy / "checkpoints" / "latest"
    data = write_idx_dir(str(tmp_path / "mnist"))
    line = one_error_line(
        run_script(
            "wgangp_mnist.py",
            "MODEL.dim=4",
            "MODEL.noise_dim=16",
            "TRAIN.batch_size=16",
            "TRAIN.epochs=2",
            f"DATA.data_path={data}",
            f"TRAIN.checkpoint_path={latest}",
            f"hydra.run.dir={tmp_path / 'mnist_run'}",
        )
    )
    assert line == (
        f"ERROR: TRAIN.checkpoint_path={latest} is a checkpoint of the toy example "
        "(wgangp_toy.py on 8gaussians), not of the MNIST example; resume it with "
        "examples/wgangp/wgangp_toy.py, or give a checkpoint of an MNIST run."
    ), line
    assert not (tmp_path / "mnist_run" / "checkpoints").exists()
