"""Which example a checkpoint is from, told by the settings it was trained with: a checkpoint
of one example given to another is refused in one line that names the example it is from,
not as a list of every setting the two examples do not share."""

from typing import Dict, Optional

from .errors import UsageError

# each example by a setting only its config has, with its script and its data in words
EXAMPLES = {
    "MODEL.hidden_size": ("toy", "wgangp_toy.py", "DATA.mode"),
    "MODEL.dim": ("MNIST", "wgangp_mnist.py", None),
    "MODEL.dim_g": ("CIFAR-10", "wgangp_cifar10.py", None),
}
A_RUN = {"toy": "a toy run", "MNIST": "an MNIST run", "CIFAR-10": "a CIFAR-10 run"}


def example_of(settings: Optional[Dict[str, object]]):
    """(name, script, data) of the example whose settings these are, or None."""
    for key, (name, script, data) in EXAMPLES.items():
        if settings and key in settings:
            return name, script, settings.get(data) if data else None
    return None


def check_example(path: str, saved: Optional[Dict[str, object]], now: Dict[str, object]) -> None:
    """UsageError when the checkpoint at `path` was trained by another example than this one."""
    theirs, ours = example_of(saved), example_of(now)
    if theirs is None or ours is None or theirs[0] == ours[0]:
        return
    data = f" on {theirs[2]}" if theirs[2] else ""
    raise UsageError(
        f"TRAIN.checkpoint_path={path} is a checkpoint of the {theirs[0]} example "
        f"({theirs[1]}{data}), not of the {ours[0]} example; resume it with "
        f"examples/wgangp/{theirs[1]}, or give a checkpoint of {A_RUN[ours[0]]}."
    )
