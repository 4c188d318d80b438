"""Make the example's modules importable as the scripts import them."""

import os
import sys

EXAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "examples", "wgangp")
sys.path.insert(0, EXAMPLE_DIR)
