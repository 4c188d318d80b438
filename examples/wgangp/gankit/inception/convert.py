"""Convert pytorch-fid's TF Inception weights (.pth) to a Paddle .pdparams, without torch.

    cd examples/wgangp
    python -m inception.convert pt_inception-2015-12-05-6726825d.pth inception_tf2015.pdparams

The input is pytorch-fid's port of TensorFlow's 2015-12-05 Inception graph, a
torch.save'd state dict with torchvision Inception3 names; the output is a Paddle
.pdparams whose names are networks.TFInceptionV3's (load_inception also reads the
.pth directly).
"""

import argparse
import sys
from typing import Dict

import numpy as np
import paddle

from . import networks, weights


def convert(torch_path: str, paddle_path: str) -> Dict[str, np.ndarray]:
    """Convert the TF Inception .pth to a .pdparams, checked against TFInceptionV3."""
    state = weights.state_from_torch(torch_path)
    networks.check_weights(
        networks.TFInceptionV3(), state, torch_path, "the 2015 TF Inception graph"
    )
    paddle.save(state, paddle_path)
    return state


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("torch_weights", help="pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("paddle_weights", help="output .pdparams")
    args = parser.parse_args(argv)
    try:
        state = convert(args.torch_weights, args.paddle_weights)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {len(state)} arrays to {args.paddle_weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
