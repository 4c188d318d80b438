"""Installs what the WGAN-GP examples need; the examples run as scripts from the checkout."""

from pathlib import Path

from setuptools import setup


def requirements(name):
    lines = (Path(__file__).parent / name).read_text().splitlines()
    lines = [line.split("#")[0].strip() for line in lines]
    return [line for line in lines if line and not line.startswith("-r")]


setup(
    name="wgangp-ppsci",
    version="0.1.0",
    description="WGAN-GP examples (toy, MNIST, CIFAR-10) for PaddleScience",
    python_requires=">=3.9",
    install_requires=requirements("requirements.txt"),
    extras_require={
        "test": requirements("requirements-test.txt") + requirements("requirements-docs.txt"),
        "docs": requirements("requirements-docs.txt"),
    },
    py_modules=[],
)
