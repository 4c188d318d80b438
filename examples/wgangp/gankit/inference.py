"""Sampling an exported generator with ppsci's predictor (deploy.python_infer), and export's ONNX switch."""

import importlib.util
from os import path as osp
from typing import Dict

import numpy as np
from deploy.python_infer import GeneralPredictor
from ppsci.utils import logger

from .errors import UsageError, first_line
from .provenance import example_of


def check_onnx(cfg) -> None:
    """mode=export with INFER.onnx (Solver.export also writes <export_path>.onnx) needs
    paddle2onnx: at start-up, a missing package stops the run before any work."""
    if cfg.get("mode") != "export" or not cfg.get("INFER", {}).get("onnx", False):
        return
    # paddle2onnx folds constants with polygraphy and turns on its automatic installs: a
    # missing onnx_graphsurgeon is pip-installed into the user's environment, and its newest
    # release pulls NumPy 2, which breaks ppsci. Ask for both packages up front instead.
    missing = [
        name
        for name in ("paddle2onnx", "onnx_graphsurgeon")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise UsageError(
            f"INFER.onnx=true needs {' and '.join(missing)}: pip install "
            "paddle2onnx==2.1.0 onnx_graphsurgeon==0.5.8 'numpy<2' (or export "
            "without INFER.onnx)."
        )


class GeneratorPredictor(GeneralPredictor):
    """ppsci's predictor for an exported generator (INFER.pdmodel_path / pdiparams_path, or
    INFER.onnx_path with INFER.engine=onnx); predict returns the generated samples."""

    def __init__(self, cfg):
        for setting in (
            ("onnx_path",) if cfg.INFER.engine == "onnx" else ("pdmodel_path", "pdiparams_path")
        ):
            if not osp.isfile(str(cfg.INFER[setting])):
                raise UsageError(
                    f"INFER.{setting}: no such file: {cfg.INFER[setting]}; run "
                    "mode=export first or point INFER.export_path at an exported "
                    "model."
                )
        self.model_path = (
            cfg.INFER.onnx_path if cfg.INFER.engine == "onnx" else cfg.INFER.pdmodel_path
        )
        try:
            super().__init__(cfg)
        except Exception as e:  # noqa: B902 (the engine's errors have no common type)
            raise UsageError(
                f"INFER.export_path={cfg.INFER.export_path}: the exported model cannot be "
                f"read ({first_line(e)[:200]}); export it again with mode=export."
            ) from None
        self.samples = samples_of(cfg)

    def _create_paddle_predictor(self):
        # ppsci's, without config.enable_memory_optim(): Paddle 3.3's CPU inference engine
        # fails in its memory_optimize_pass on these exported generators
        from paddle import inference

        config = inference.Config(self.pdmodel_path, self.pdiparams_path)
        if self.device == "gpu":
            config.enable_use_gpu(self.gpu_mem, self.gpu_id)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(self.num_cpu_threads)
        config.switch_ir_optim(self.ir_optim)
        config.disable_glog_info()
        return inference.create_predictor(config), config

    def predict(self, input_dict: Dict[str, np.ndarray], batch_size: int = 64) -> np.ndarray:
        """The exported generator's one output for `input_dict`, in batches of batch_size."""
        self.check_noise(input_dict)
        outputs = super().predict(input_dict, batch_size)
        n = len(next(iter(input_dict.values())))
        logger.info(f"Generated {n} samples with the inference model {self.model_path}")
        return next(iter(outputs.values()))

    def check_noise(self, input_dict: Dict[str, np.ndarray]) -> None:
        """One line when the exported generator does not take the noise MODEL.noise_dim draws
        (the run's settings, not the export's, draw it): a one-sample probe first."""
        probe = {name: value[:1] for name, value in input_dict.items()}
        try:
            made = next(iter(GeneralPredictor.predict(self, probe, 1).values()))
        except (ValueError, RuntimeError) as e:  # the engine's checks, as it words them
            if "dimension" not in str(e) and "shape" not in str(e):
                raise UsageError(
                    f"{self.model_path} does not take this example's inputs "
                    f"({', '.join(input_dict)}): {first_line(e)[:200]}; it was exported from another "
                    "example, or with other settings (MODEL.conditional)."
                ) from None
            raise UsageError(
                f"{self.model_path} does not take noise of MODEL.noise_dim="
                f"{input_dict['noise'].shape[1]}; give the MODEL.noise_dim of the run it "
                "was exported from."
            ) from None
        if self.samples and tuple(made.shape[1:]) != self.samples[1]:
            raise UsageError(
                f"{self.model_path} makes samples of shape {list(made.shape[1:])}, not "
                f"{self.samples[0]}'s {list(self.samples[1])}: it was exported from another "
                "example; give INFER.export_path of this example's export."
            )


SAMPLE_SHAPES = {"toy": (2,), "MNIST": (1, 28, 28), "CIFAR-10": (3, 32, 32)}


def samples_of(cfg):
    """(example, the shape of one sample) that this example's generator makes, the example
    told by its settings as a checkpoint's are (provenance.example_of); None for own data
    (its channels come from the data)."""
    settings = {f"{s}.{k}": v for s in ("DATA", "MODEL") for k, v in cfg.get(s, {}).items()}
    found = example_of(settings)
    if found is None or found[0] not in SAMPLE_SHAPES:
        return None
    return f"the {found[0]} example", SAMPLE_SHAPES[found[0]]
