"""The gradient penalty and both losses against closed forms and finite differences."""

import numpy as np
import paddle
import pytest
from paddle import nn

import functions
from gankit import networks


@pytest.fixture
def float64():
    paddle.set_default_dtype("float64")
    yield
    paddle.set_default_dtype("float32")


def linear_critic(w, b):
    critic = nn.Linear(len(w), 1)
    critic.weight.set_value(np.asarray(w, "float64").reshape(-1, 1))
    critic.bias.set_value(np.asarray([b], "float64"))
    return critic


def small_critic(seed=0):
    paddle.seed(seed)
    return nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 1))


def numpy_critic(critic):
    """The same tanh critic as a numpy function, for finite differences."""
    w1, b1 = critic[0].weight.numpy(), critic[0].bias.numpy()
    w2, b2 = critic[2].weight.numpy(), critic[2].bias.numpy()
    return lambda x: (np.tanh(x @ w1 + b1) @ w2 + b2)[..., 0]


def fd_gradient_norms(f, x, eps=1e-6):
    grads = np.zeros_like(x)
    for j in range(x.shape[1]):
        step = np.zeros_like(x)
        step[:, j] = eps
        grads[:, j] = (f(x + step) - f(x - step)) / (2 * eps)
    return np.linalg.norm(grads, axis=1)


def test_penalty_of_linear_critic_is_closed_form(float64):
    # D(x) = w.x + b has gradient w everywhere: penalty (|w| - 1)^2
    w = [3.0, -4.0]
    real, fake = paddle.randn([16, 2]), paddle.randn([16, 2])
    gp, _ = functions.gradient_penalty(linear_critic(w, 0.5), real, fake)
    assert float(gp) == pytest.approx((5.0 - 1.0) ** 2, rel=1e-12)


def test_penalty_on_images_uses_the_norm_over_all_pixels(float64):
    # a linear critic on [N, 3, 4, 4] images: gradient norm is |w| over all 48 inputs
    rng = np.random.default_rng(0)
    w = rng.standard_normal(48)
    critic = nn.Sequential(
        lambda_layer(lambda x: x.reshape([x.shape[0], -1])), linear_critic(w, 0.0)
    )
    real, fake = paddle.randn([5, 3, 4, 4]), paddle.randn([5, 3, 4, 4])
    gp, _ = functions.gradient_penalty(critic, real, fake)
    assert float(gp) == pytest.approx((np.linalg.norm(w) - 1) ** 2, rel=1e-10)


class lambda_layer(nn.Layer):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_penalty_matches_finite_differences_at_the_interpolates(float64):
    critic = small_critic()
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((8, 2)), rng.standard_normal((8, 2))
    alpha = rng.random((8, 1))
    gp, _ = functions.gradient_penalty(
        critic, paddle.to_tensor(real), paddle.to_tensor(fake), paddle.to_tensor(alpha)
    )
    x_hat = alpha * real + (1 - alpha) * fake
    expected = np.mean((fd_gradient_norms(numpy_critic(critic), x_hat) - 1) ** 2)
    assert float(gp) == pytest.approx(expected, rel=1e-7)


def test_penalty_gradient_wrt_critic_weights_matches_finite_differences(float64):
    # the double backward the critic's update needs
    critic = small_critic(seed=3)
    rng = np.random.default_rng(2)
    real, fake = (
        paddle.to_tensor(rng.standard_normal((6, 2))),
        paddle.to_tensor(rng.standard_normal((6, 2))),
    )
    alpha = paddle.to_tensor(rng.random((6, 1)))
    functions.gradient_penalty(critic, real, fake, alpha)[0].backward()
    weight = critic[0].weight
    autograd = weight.grad.numpy().copy()
    base = weight.numpy().copy()
    eps = 1e-6
    for idx in [(0, 0), (1, 3), (0, 4)]:
        values = []
        for sign in (1, -1):
            shifted = base.copy()
            shifted[idx] += sign * eps
            weight.set_value(shifted)
            values.append(float(functions.gradient_penalty(critic, real, fake, alpha)[0]))
        weight.set_value(base)
        assert autograd[idx] == pytest.approx(
            (values[0] - values[1]) / (2 * eps), rel=1e-6, abs=1e-9
        )


def test_critic_loss_terms_are_the_wgan_gp_objective(float64):
    w, b, lam = [0.6, 0.3], -0.2, 10.0
    critic = linear_critic(w, b)
    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((32, 2)), rng.standard_normal((32, 2)) + 1
    loss = functions.CriticLoss(critic, lam)
    terms = loss({"real": paddle.to_tensor(real), "fake": paddle.to_tensor(fake)})
    wasserstein = np.dot(w, real.mean(0) - fake.mean(0))
    assert float(terms["critic_wasserstein"]) == pytest.approx(-wasserstein, rel=1e-12)
    assert float(terms["critic_penalty"]) == pytest.approx(lam * (np.linalg.norm(w) - 1) ** 2)
    means = loss.meter.pop_means()
    assert means["wasserstein"] == pytest.approx(wasserstein, rel=1e-12)
    assert means["gradient_penalty"] == pytest.approx((np.linalg.norm(w) - 1) ** 2)


def test_critic_loss_uses_its_key_names(float64):
    critic = linear_critic([1.0, 0.0], 0.0)
    loss = functions.CriticLoss(critic, 1.0, real_key="x", fake_key="x_gen")
    terms = loss({"x": paddle.ones([4, 2]), "x_gen": paddle.zeros([4, 2])})
    assert float(terms["critic_wasserstein"]) == pytest.approx(-1.0)


def test_critic_step_does_not_backpropagate_into_the_generator():
    generator, critic = nn.Linear(2, 2), small_critic()
    fake = generator(paddle.randn([8, 2]))
    terms = functions.CriticLoss(critic, 0.1)({"real": paddle.randn([8, 2]), "fake": fake})
    sum(terms.values()).backward()
    assert all(p.grad is None for p in generator.parameters())
    assert all(p.grad is not None for p in critic.parameters())


def test_generator_loss_is_minus_mean_critic_score_and_leaves_critic_untouched(float64):
    w, b = [0.5, -2.0], 0.25
    critic, generator = linear_critic(w, b), nn.Linear(2, 2)
    noise = paddle.randn([16, 2])
    with networks.frozen(critic):
        fake = generator(noise)
        loss = functions.GeneratorLoss(critic)({"fake": fake})["generator"]
        loss.backward()
    assert float(loss) == pytest.approx(-(fake.numpy() @ np.array(w) + b).mean(), rel=1e-12)
    assert all(p.grad is None for p in critic.parameters())
    # d loss / d bias_G = -w (mean over the batch of the critic's slope)
    np.testing.assert_allclose(generator.bias.grad.numpy(), -np.array(w), rtol=1e-12)
    assert all(not p.stop_gradient for p in critic.parameters())  # unfrozen again


def test_the_logged_spread_is_paddles_std_bit_for_bit_without_a_host_read(monkeypatch):
    from gankit.progress import spread

    rng = np.random.default_rng(0)
    vectors = [
        rng.standard_normal(n) * s + rng.uniform(-2, 2)
        for n in (2, 16, 64, 257)
        for s in (1e-3, 1.0, 1e3)
    ]
    expected = [paddle.to_tensor(v.astype("float32")).std().numpy().tobytes() for v in vectors]
    reads, numpy = [], paddle.Tensor.numpy
    monkeypatch.setattr(
        paddle.Tensor, "numpy", lambda self, *a, **k: reads.append(1) or numpy(self, *a, **k)
    )
    paddle.to_tensor(vectors[0].astype("float32")).std()
    assert len(reads) == 1  # the count sees paddle.std's read of its degrees of freedom
    results = [spread(paddle.to_tensor(v.astype("float32"))) for v in vectors]
    assert len(reads) == 1  # and none of spread's
    monkeypatch.undo()
    assert [r.numpy().tobytes() for r in results] == expected
