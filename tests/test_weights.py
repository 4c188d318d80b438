"""Weights loading: strict shapes and names, and no code run from a crafted file."""

import os
import pickle

import functions
import models
import numpy as np
import paddle
import pytest


def usage_error(capsys, fn, *args):
    with pytest.raises(SystemExit) as info:
        fn(*args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    return err


def test_round_trip_through_paddle_save(tmp_path):
    paddle.seed(1)
    saved, _ = models.toy_models(2, 16, 2)
    functions.save_weights(saved, str(tmp_path / "g.pdparams"))
    loaded, _ = models.toy_models(2, 16, 2)
    functions.load_weights(loaded, str(tmp_path / "g.pdparams"), "EVAL.pretrained_gen_model_path")
    for (name, a), b in zip(saved.state_dict().items(), loaded.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_a_crafted_pickle_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "model_generator.pdparams"
    path.write_bytes(pickle.dumps({"net.0.weight": Payload()}, protocol=4))
    pickle.loads(path.read_bytes())  # plain pickle (and so paddle.load) runs it...
    assert marker.exists()
    marker.unlink()
    generator, _ = models.toy_models(2, 16, 2)
    err = usage_error(capsys, functions.load_weights, generator, str(path), "EVAL.pretrained_gen_model_path")
    assert "system" in err and "nothing from it was run" in err
    assert not marker.exists()  # ...ours did not


def test_weights_of_another_size_are_refused(tmp_path, capsys):
    small, _ = models.toy_models(2, 16, 2)
    functions.save_weights(small, str(tmp_path / "g.pdparams"))
    large, _ = models.toy_models(2, 32, 2)
    err = usage_error(capsys, functions.load_weights, large, str(tmp_path / "g.pdparams"), "INFER.pretrained_model_path")
    assert "INFER.pretrained_model_path" in err and "does not fit this model" in err and "expected [2, 32]" in err


def test_not_a_weights_file(tmp_path, capsys):
    path = tmp_path / "page.pdparams"
    path.write_text("<html><body>404 Not Found</body></html>")
    generator, _ = models.toy_models(2, 16, 2)
    err = usage_error(capsys, functions.load_weights, generator, str(path), "EVAL.pretrained_gen_model_path")
    assert "is not a readable .pdparams file" in err
