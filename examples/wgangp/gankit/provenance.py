"""Which example a checkpoint or a weights file is from: a checkpoint by the settings it was
trained with, weights by the names of their tensors. Either, given to another example (or a
critic's weights given as a generator's), is refused in one line that names what it is, not
as a list of every setting or tensor the two do not share."""

import re
from typing import Dict, Iterable, Optional

from .errors import UsageError

# each example by a setting only its config has, with its script and its data in words
EXAMPLES = {
    "DATA.resolution": ("own-data", "wgangp_custom.py", None),  # before CIFAR-10's
    "MODEL.hidden_size": ("toy", "wgangp_toy.py", "DATA.mode"),
    "MODEL.dim": ("MNIST", "wgangp_mnist.py", None),
    "MODEL.dim_g": ("CIFAR-10", "wgangp_cifar10.py", None),
}
A_RUN = {
    "toy": "a toy run",
    "MNIST": "an MNIST run",
    "CIFAR-10": "a CIFAR-10 run",
    "own-data": "an own-data run",
}


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


# each network by the names of its tensors: (pattern every name matches, what it is, script)
MNIST = "wgangp_mnist.py"
RESNET_G = r"^net\.(fc|blocks|norm|out)\."
NETWORKS = (
    (r"^net\.\d+\.", "the toy example's generator", "wgangp_toy.py"),
    (r"^\d+\.", "the toy example's critic", "wgangp_toy.py"),
    (r"^net\.(fc|up\d|bn\d)\.", "the MNIST example's generator", MNIST),
    (r"^(convs\.\d+|fc)\.", "the MNIST example's critic", MNIST),
    (RESNET_G, "the CIFAR-10 example's generator", "wgangp_cifar10.py"),
    (RESNET_G + r"|^units\.", "the own-data example's generator", "wgangp_custom.py"),
    (
        r"^(blocks\.\d+|conv[12]|shortcut1|score|classes)\.",
        "a 32x32 ResNet critic (the CIFAR-10 or the own-data example's)",
        None,
    ),
    (
        r"^(blocks\.\d+|input|score|classes)\.",
        "the own-data example's 64x64 critic",
        "wgangp_custom.py",
    ),
    (r"^generator\.(linear|reluLayer\d)\.", "PaddleScience's toy generator", "wgangp_toy.py"),
    (r"^discriminator\.(linear|reluLayer\d)\.", "PaddleScience's toy critic", "wgangp_toy.py"),
    (r"^generator\.(linear1|conv2d_transpose\d)\.", "PaddleScience's MNIST generator", MNIST),
    (r"^discriminator\.(linear|conv2d_\d)\.", "PaddleScience's MNIST critic", MNIST),
    (r"^generator\.", "PaddleScience's CIFAR-10 generator", "wgangp_cifar10.py"),
    (r"^discriminator\.", "PaddleScience's CIFAR-10 critic", "wgangp_cifar10.py"),
)


FILES = {"generator": "model_generator.pdparams", "critic": "model_discriminator.pdparams"}


def network_of(names: Iterable[str]):
    """(what, script) of the network whose tensors have these names, or None."""
    names = [n for n in names if n != "StructuredToParameterName@@"]
    for pattern, what, script in NETWORKS:
        if names and all(re.match(pattern, n) for n in names):
            return what, script
    return None


def check_network(setting: str, path: str, names: Iterable[str], ours: Iterable[str]) -> None:
    """UsageError naming the network a weights file holds when it is not the kind of network
    this run builds (tensor names `ours`)."""
    theirs, mine = network_of(names), network_of(ours)
    if theirs is None or mine is None or theirs == mine:
        return
    if theirs[1] and theirs[1] != mine[1]:
        where = f"; give it to examples/wgangp/{theirs[1]}"
    elif theirs[0].startswith("PaddleScience") != mine[0].startswith("PaddleScience"):
        where = " (MODEL.architecture=auto loads the paper's or PaddleScience's)"
    elif theirs[0].split()[-1] != mine[0].split()[-1]:  # a critic given as a generator
        role = mine[0].split()[-1]
        where = f"; a run writes its {role}'s weights to {FILES[role]}"
    else:
        where = ""
    raise UsageError(
        f"{setting}: {path} holds the weights of {theirs[0]}, not of {mine[0]}{where}."
    )
