"""ppsci's monitoring switches (use_vdl, use_tbd, use_wandb) receive the progress scalars and
the sample grid of every epoch; the event files are read back here."""

import glob
import json
import struct

import pytest

from conftest import run_script

RUN = [
    "TRAIN.epochs=2",
    "TRAIN.iters_per_epoch=2",
    "TRAIN.batch_size=32",
    "MODEL.hidden_size=16",
    "EVAL.num_samples=100",
    "log_freq=2",
]


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("monitored")
    result = run_script(
        "wgangp_toy.py",
        *RUN,
        "use_vdl=true",
        "use_tbd=true",
        "use_wandb=true",
        "+wandb_config.mode=offline",
        "+wandb_config.project=wgangp-test",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def tensorboard_events(path):
    """(step, tag, value or 'image') of a TensorBoard event file (TFRecord of Event protos)."""
    from tensorboardX.proto import event_pb2

    data, pos, out = open(path, "rb").read(), 0, []
    while pos < len(data):
        length = struct.unpack("<Q", data[pos : pos + 8])[0]
        event = event_pb2.Event()
        event.ParseFromString(data[pos + 12 : pos + 12 + length])
        pos += 12 + length + 4  # length, its CRC, the record, its CRC
        for value in event.summary.value:
            kind = value.simple_value if value.HasField("simple_value") else "image"
            out.append((event.step, value.tag, kind))
    return out


def wandb_history(path):
    """The history rows of an offline W&B run file (a LevelDB-style log of Record protos)."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, records, pending = 7, [], b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768  # records never straddle a 32 KiB block's 7-byte tail
        if left < 7:
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
    rows = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows


def logged_losses(run_dir):
    """{iteration: critic_loss} of the progress lines in train.log."""
    import re

    found = re.findall(
        r"\[Train\]\[Iter (\d+)/4\] critic_loss: (-?[\d.]+)", (run_dir / "train.log").read_text()
    )
    return {int(step): float(value) for step, value in found}


def test_tensorboard(monitored):
    events = tensorboard_events(glob.glob(str(monitored / "tensorboard" / "events.*"))[0])
    critic = {step: value for step, tag, value in events if tag == "train/critic_loss"}
    assert critic.keys() == logged_losses(monitored).keys() == {1, 2, 4}
    assert critic == pytest.approx(logged_losses(monitored), abs=1e-5)
    assert {(step, tag) for step, tag, value in events if value == "image"} == {
        (2, "samples"),
        (4, "samples"),
    }
    assert any(tag == "epoch/wasserstein" for _, tag, _ in events)


def test_visualdl(monitored):
    from visualdl import LogReader

    reader = LogReader(file_path=glob.glob(str(monitored / "vdl" / "vdlrecords.*"))[0])
    critic = {r.id: r.value for r in reader.get_data("scalar", "train/critic_loss")}
    assert critic == pytest.approx(logged_losses(monitored), abs=1e-5)
    assert len(reader.get_data("image", "samples")) == 2


def test_wandb_offline(monitored):
    rows = wandb_history(glob.glob(str(monitored / "wandb" / "offline-run-*" / "run-*.wandb"))[0])
    critic = {row["step"]: row["train/critic_loss"] for row in rows if "train/critic_loss" in row}
    assert critic == pytest.approx(logged_losses(monitored), abs=1e-5)
    images = [row for row in rows if row.get("samples/_type") == "image-file"]
    assert [row["step"] for row in images] == [2, 4]


def test_a_missing_package_is_one_line(tmp_path, monkeypatch):
    from conftest import one_error_line

    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "visualdl.py").write_text("raise ModuleNotFoundError('visualdl')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocker))
    line = one_error_line(
        run_script("wgangp_toy.py", *RUN, "use_vdl=true", f"hydra.run.dir={tmp_path / 'run'}")
    )
    assert "use_vdl=true needs visualdl: pip install visualdl" in line
