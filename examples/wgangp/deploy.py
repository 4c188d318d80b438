"""Export the generator as a Paddle inference model, and sample with it through paddle.inference."""

import os
from os import path as osp
from typing import Dict

import numpy as np
import paddle
from ppsci.utils import logger

from errors import UsageError


def export_generator(generator, input_spec: dict, export_path: str) -> None:
    """Save the generator as a Paddle inference model (export_path + .json/.pdiparams)."""
    os.makedirs(osp.dirname(export_path) or ".", exist_ok=True)
    generator.eval()
    static = paddle.jit.to_static(generator, input_spec=[input_spec], full_graph=True)
    paddle.jit.save(static, export_path)
    logger.info(f"Exported the generator to {export_path}.json / .pdiparams")


def predict_exported(cfg, inputs: Dict[str, np.ndarray]) -> np.ndarray:
    """Run the exported generator with paddle.inference, in INFER.batch_size batches."""
    from paddle import inference

    for setting in ("pdmodel_path", "pdiparams_path"):
        if not osp.isfile(str(cfg.INFER[setting])):
            raise UsageError(
                f"INFER.{setting}: no such file: {cfg.INFER[setting]}; run mode=export "
                "first or point INFER.export_path at an exported model."
            )
    config = inference.Config(cfg.INFER.pdmodel_path, cfg.INFER.pdiparams_path)
    if cfg.INFER.device == "gpu":
        config.enable_use_gpu(cfg.INFER.gpu_mem, cfg.INFER.gpu_id)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(cfg.INFER.num_cpu_threads)
    # no enable_memory_optim(): Paddle 3.3's CPU build fails in memory_optimize_pass
    config.disable_glog_info()
    predictor = inference.create_predictor(config)
    n, size = len(next(iter(inputs.values()))), cfg.INFER.batch_size
    outputs = []
    for start in range(0, n, size):
        for name, array in inputs.items():
            predictor.get_input_handle(name).copy_from_cpu(array[start:start + size])
        predictor.run()
        outputs.append(predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu())
    logger.info(f"Generated {n} samples with the inference model {cfg.INFER.pdmodel_path}")
    return np.concatenate(outputs)
