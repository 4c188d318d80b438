"""The own-data notebook (examples/wgangp/wgangp_custom.ipynb), executed headless as Jupyter
runs it, with a shorter time: it trains, and shows its progress, samples and metrics."""

import json
import os

import nbformat
from nbclient import NotebookClient

from conftest import EXAMPLE_DIR


def test_notebook_trains_and_shows_samples_and_metrics(tmp_path, monkeypatch):
    notebook = nbformat.read(os.path.join(EXAMPLE_DIR, "wgangp_custom.ipynb"), as_version=4)
    settings = notebook.cells[1]
    assert "MINUTES = 3" in settings.source and 'SCRIPT = "wgangp_custom.py"' in settings.source
    settings.source = settings.source.replace("MINUTES = 3", "MINUTES = 0.6").replace(
        'SCRIPT = "wgangp_custom.py"', f"SCRIPT = {os.path.join(EXAMPLE_DIR, 'wgangp_custom.py')!r}"
    )
    training = notebook.cells[5]  # shorter epochs and evaluations than a user's few minutes
    for long, short in (
        ("iters_per_epoch=50", "iters_per_epoch=10"),
        ("samples=200", "samples=64"),
    ):
        assert long in training.source
        training.source = training.source.replace(long, short)
    monkeypatch.setenv("HOME", str(tmp_path))  # the statistics' cache, not the user's
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()

    def outputs(i, kind):
        return [o for o in notebook.cells[i].outputs if o.output_type == kind]

    text = lambda i: "".join(o.text for o in outputs(i, "stream"))  # noqa: E731
    assert "(400, 32, 32) float32" in text(3)
    assert "[Train]" in text(5) and "run directory:" in text(5)
    run_dir = text(5).split("run directory:")[1].split()[0]
    assert os.path.isdir(os.path.join(tmp_path, run_dir))
    images = [o for o in notebook.cells[7].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the last epoch's grid, generated beside real fields
    assert "(the data's units)" in text(7)
    shown = text(9).splitlines()
    with open(os.path.join(tmp_path, run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    for name in ("swd", "value_w1", "spectrum_error"):
        row = next(line for line in shown if line.startswith(name))
        assert f"{metrics[name]:.4f}" in row and f"{metrics[name + '_floor']:.4f}" in row
    assert any("image/png" in o.get("data", {}) for o in notebook.cells[9].outputs)
