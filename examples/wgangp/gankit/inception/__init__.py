"""Inception v3 networks and their weights, for the Inception Score and FID."""
