"""TRAIN.ema_decay: a moving average of the generator's weights."""

import contextlib

import paddle
from ppsci.utils import logger
from ppsci.utils.ema import ExponentialMovingAverage


class GeneratorAverage:
    """TRAIN.ema_decay: ppsci's ExponentialMovingAverage of the generator's weights, started
    (from a copy of them) at the first generator iteration past TRAIN.ema_start of the run's
    planned iterations and moved after every generator step since; a checkpoint holds it
    ({} before it starts)."""

    def __init__(self, generator: paddle.nn.Layer, decay: float, start: float):
        self.generator, self.decay, self.start = generator, decay, start
        self.ema = None

    @property
    def started(self) -> bool:
        return self.ema is not None

    def update(self, iteration: int, total: int) -> None:
        if self.ema is not None:
            self.ema.update()
        elif iteration > self.start * total:
            self.ema = ExponentialMovingAverage(self.generator, self.decay)
            logger.info(
                f"The generator's moving average (TRAIN.ema_decay={self.decay:g}) starts "
                f"at generator iteration {iteration}, past TRAIN.ema_start="
                f"{self.start:g} of {total}."
            )

    @contextlib.contextmanager
    def applied(self):
        """The average's weights in the generator inside the block (its own after it)."""
        self.ema.apply_shadow()
        try:
            yield
        finally:
            self.ema.restore()

    def state_dict(self) -> dict:
        return {} if self.ema is None else dict(self.ema.state_dict())

    def set_state_dict(self, state: dict) -> None:
        self.ema = None
        if state:
            self.ema = ExponentialMovingAverage(self.generator, self.decay)
            self.ema.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
