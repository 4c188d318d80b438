"""A checkpoint or weights of one example given to another, or a critic's weights given as a
generator's: refused naming what they are (a checkpoint was refused with a list of ten differing
settings, weights with a list of the tensors the two networks do not share)."""

import pytest
from mnist_files import write_idx_dir
from omegaconf import OmegaConf
from test_faults import TOY

from conftest import EXAMPLE_DIR, one_error_line, run_script


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A short toy run's directory."""
    toy = tmp_path_factory.mktemp("provenance") / "toy"
    result = run_script(
        "wgangp_toy.py", *TOY, "TRAIN.epochs=1", "TRAIN.iters_per_epoch=2", f"hydra.run.dir={toy}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return toy


def test_a_toy_checkpoint_given_to_mnist_names_the_toy_example(toy, tmp_path):
    latest = toy / "checkpoints" / "latest"
    data = write_idx_dir(str(tmp_path / "mnist"))
    line = one_error_line(
        run_script(
            "wgangp_mnist.py",
            "MODEL.dim=4",
            "MODEL.noise_dim=16",
            "TRAIN.batch_size=16",
            "TRAIN.epochs=2",
            f"DATA.data_path={data}",
            f"TRAIN.checkpoint_path={latest}",
            f"hydra.run.dir={tmp_path / 'mnist_run'}",
        )
    )
    assert line == (
        f"ERROR: TRAIN.checkpoint_path={latest} is a checkpoint of the toy example "
        "(wgangp_toy.py on 8gaussians), not of the MNIST example; resume it with "
        "examples/wgangp/wgangp_toy.py, or give a checkpoint of an MNIST run."
    ), line
    assert not (tmp_path / "mnist_run" / "checkpoints").exists()


def test_toy_weights_given_to_cifar10_and_to_own_data_name_the_toy_generator(toy, tmp_path):
    weights = toy / "model_generator.pdparams"
    line = one_error_line(
        run_script(
            "wgangp_cifar10.py",
            "mode=export",
            f"INFER.pretrained_model_path={weights}",
            f"hydra.run.dir={tmp_path / 'cifar'}",
        )
    )
    assert line == (
        f"ERROR: INFER.pretrained_model_path: {weights} holds the weights of the toy example's "
        "generator, not of the CIFAR-10 example's generator; give it to "
        "examples/wgangp/wgangp_toy.py."
    ), line
    line = one_error_line(
        run_script(
            "wgangp_custom.py",
            "mode=export",
            f"INFER.pretrained_model_path={weights}",
            f"hydra.run.dir={tmp_path / 'own'}",
        )
    )
    assert line == (
        f"ERROR: INFER.pretrained_model_path={weights}: holds the weights of the toy example's "
        "generator, not of this example's generator; give it to examples/wgangp/wgangp_toy.py"
    ), line


def test_a_critic_given_as_the_generator_is_named(toy, tmp_path):
    critic = toy / "model_discriminator.pdparams"
    line = one_error_line(
        run_script(
            "wgangp_toy.py",
            *TOY,
            "mode=eval",
            f"EVAL.pretrained_gen_model_path={critic}",
            f"hydra.run.dir={tmp_path / 'eval'}",
        )
    )
    assert line == (
        f"ERROR: EVAL.pretrained_gen_model_path: {critic} holds the weights of the toy "
        "example's critic, not of the toy example's generator; a run writes its generator's "
        "weights to model_generator.pdparams."
    ), line


def test_every_examples_networks_are_told_apart_by_their_tensor_names():
    from gankit import networks
    from gankit.networks import fields
    from gankit.provenance import network_of
    from gankit.published.networks import published_network

    own = OmegaConf.load(f"{EXAMPLE_DIR}/conf/wgangp_custom.yaml").MODEL
    built = {
        "toy": networks.toy_models(2, 16, 3),
        "MNIST": networks.mnist_models(8, 4, False),
        "MNIST with batch norms": networks.mnist_models(8, 4, True),
        "CIFAR-10": networks.cifar_models(8, 8, 8, True, False, 1),
        "CIFAR-10 unconditional": networks.cifar_models(8, 8, 8, False, False, 1),
        "own 32": fields.own_data_models(own, 32, 1, 1, (4, 4), 1),
        "own 64": fields.own_data_models(own, 64, 3, 2, (4, 4), 1),
    }
    names = {
        key: tuple(network_of(net.state_dict())[0] for net in nets) for key, nets in built.items()
    }
    resnet_critic = "a 32x32 ResNet critic (the CIFAR-10 or the own-data example's)"
    assert names == {
        "toy": ("the toy example's generator", "the toy example's critic"),
        "MNIST": ("the MNIST example's generator", "the MNIST example's critic"),
        "MNIST with batch norms": ("the MNIST example's generator", "the MNIST example's critic"),
        "CIFAR-10": ("the CIFAR-10 example's generator", resnet_critic),
        "CIFAR-10 unconditional": ("the CIFAR-10 example's generator", resnet_critic),
        "own 32": ("the own-data example's generator", resnet_critic),
        "own 64": ("the own-data example's generator", "the own-data example's 64x64 critic"),
    }
    for example, name in (("toy", "toy"), ("mnist", "MNIST"), ("cifar10", "CIFAR-10")):
        for role in ("generator", "critic"):
            what = network_of(published_network(example, role).state_dict())[0]
            assert what == f"PaddleScience's {name} {role}"


def test_every_examples_checkpoints_are_told_apart_by_their_settings():
    from gankit.checkpoints import training_settings
    from gankit.provenance import example_of

    found = {}
    for example in ("toy", "mnist", "cifar10", "custom"):
        cfg = OmegaConf.load(f"{EXAMPLE_DIR}/conf/wgangp_{example}.yaml")
        found[example] = example_of(training_settings(cfg))[:2]
    assert found == {
        "toy": ("toy", "wgangp_toy.py"),
        "mnist": ("MNIST", "wgangp_mnist.py"),
        "cifar10": ("CIFAR-10", "wgangp_cifar10.py"),
        "custom": ("own-data", "wgangp_custom.py"),
    }
