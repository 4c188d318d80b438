"""PaddleScience's published WGAN-GP networks and weights files, to evaluate its released weights."""
