"""I_GM with VAEs: the pixel likelihood, the importance-weighted bound in closed form, and an end-to-end
run on small images (8x8 digits, tiny networks) on CPU.

Tolerances: normalisation and closed-form identities are exact up to float64 rounding (1e-8); Monte
Carlo comparisons use 3 standard errors over independent draws.
"""

import math

import pytest
import torch
from torch import nn

from genmi import VAEMI
from genmi.pixels import dequantize, discretized_logistic_log_prob
from genmi.vae import VAE, DeconvDecoder, GaussianVector, importance_weighted_bound

TINY = dict(channels=(8, 16), hidden=64, decoder_hidden=64)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    images = torch.as_tensor(load_digits().images, dtype=torch.float32).div(16.0).unsqueeze(1)  # 17 levels in [0, 1]
    return images[:1280], images[1280:1792]


def test_discretized_logistic_is_a_distribution_over_the_256_levels():
    levels = torch.arange(256, dtype=torch.float64) / 255
    mean = torch.tensor([-1.0, 0.0, 0.3, 0.5, 1.0, 2.0], dtype=torch.float64)[:, None]
    for log_scale in (-9.0, -4.0, 0.0, 2.0):  # from far narrower than a bin to far wider than [0, 1]
        logp = discretized_logistic_log_prob(levels[None, :], mean, torch.tensor(log_scale, dtype=torch.float64))
        assert torch.isfinite(logp).all()
        assert torch.allclose(logp.exp().sum(1), torch.ones(6, dtype=torch.float64), atol=1e-8)
    # a value between levels gets the mass of the nearest level
    a = discretized_logistic_log_prob(torch.tensor(0.5), torch.tensor(0.4), torch.tensor(-3.0))
    b = discretized_logistic_log_prob(torch.tensor(128 / 255), torch.tensor(0.4), torch.tensor(-3.0))
    assert float(a) == float(b)


def test_discretized_logistic_gradients_are_finite_in_the_tails():
    mean = torch.tensor([-3.0, 0.5, 4.0], requires_grad=True)
    log_scale = torch.tensor([-8.0, -8.0, -8.0], requires_grad=True)
    x = torch.tensor([0.0, 1.0, 128 / 255])  # the edge bins and a bin far from its mean
    discretized_logistic_log_prob(x, mean, log_scale).sum().backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_scale.grad).all()


def test_dequantized_levels_keep_disjoint_bins():
    x = torch.arange(256, dtype=torch.float64).repeat(50) / 255
    xt = dequantize(x)
    assert bool(((xt >= 0) & (xt < 1)).all())
    assert torch.equal(torch.floor(xt * 256), torch.round(x * 255))  # the level is recoverable: I is preserved


def linear_gaussian_vae(w: float, s: float) -> VAE:
    """z ~ N(0, 1), v | z ~ N(w z, s^2), with the exact posterior as the encoder: q(z|v) = p(z|v)."""
    post_var = s**2 / (w**2 + s**2)
    enc = nn.Linear(1, 2)
    dec = nn.Linear(1, 1, bias=False)
    lik = GaussianVector((1,))
    with torch.no_grad():
        enc.weight.copy_(torch.tensor([[w / (w**2 + s**2)], [0.0]]))
        enc.bias.copy_(torch.tensor([0.0, 0.5 * math.log(post_var)]))
        dec.weight.fill_(w)
        lik.log_std.fill_(math.log(s))
    return VAE(enc, dec, lik, latent=1, k=1).double()


def test_the_elbo_is_exact_with_the_true_posterior():
    # log p(v|z) + log p(z) - log q(z|v) = log p(v) for every z when q is the posterior: zero-variance weights
    w, s = 1.5, 0.7
    vae = linear_gaussian_vae(w, s)
    v = torch.randn(100, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    exact = torch.distributions.Normal(0.0, math.sqrt(w**2 + s**2)).log_prob(v).squeeze(1)
    for k in (1, 8):
        vae.k = k
        assert torch.allclose(vae.log_prob(v), exact, atol=1e-8)


def test_importance_weighting_tightens_the_bound_towards_log_p():
    # a wrong proposal (the prior): E[L_1] <= E[L_16] <= log p(v), each mean over 4000 draws
    w, s, v = 1.5, 0.7, torch.tensor(2.0, dtype=torch.float64)
    exact = float(torch.distributions.Normal(0.0, math.sqrt(w**2 + s**2)).log_prob(v))
    g = torch.Generator().manual_seed(1)
    means = {}
    for k in (1, 16):
        z = torch.randn(k, 4000, generator=g, dtype=torch.float64)
        normal = torch.distributions.Normal(0.0, 1.0)
        bound = importance_weighted_bound(
            torch.distributions.Normal(w * z, s).log_prob(v), normal.log_prob(z), normal.log_prob(z)
        )
        means[k] = (float(bound.mean()), float(bound.std()) / math.sqrt(4000))
    assert means[1][0] < means[16][0] - 3 * math.hypot(means[1][1], means[16][1])
    assert means[16][0] <= exact + 3 * means[16][1]
    assert means[1][0] < exact - 0.5  # the prior is a poor proposal here: the ELBO is far from log p


def test_vae_i_gm_on_small_images_end_to_end(digits):
    train, test = digits
    torch.manual_seed(0)
    est = VAEMI((1, 8, 8), (1, 8, 8), k=4, **TINY)
    assert est.kind == "estimate" and est.default_lr == 1e-4
    # 150 steps at lr 1e-3 (the seed's 1e-4 is for 10 epochs of MNIST): enough for the joint model to
    # learn that y repeats x
    hist = est.fit(train, train, steps=150, lr=1e-3, progress=False)
    assert len(hist.estimate) == 150 and all(math.isfinite(v) for v in hist.estimate)
    same = est.estimate(test, test)
    shuffled = est.estimate(test, test[torch.randperm(len(test), generator=torch.Generator().manual_seed(1))])
    assert same.kind == "estimate" and same.n == 512
    # E_P[log r] > 0 > E_Q[log r] = -KL(Q || P) for a good ratio; measured 7.2 vs -19.5 nats
    assert same.value - shuffled.value > 10.0
    s = est.scores(test[:8], test[:8])
    assert s.shape == (8, 8) and torch.isfinite(s).all()


def test_vae_accepts_stacked_images_and_colour_shapes():
    torch.manual_seed(0)
    x = torch.rand(32, 2, 8, 8)  # two images stacked on channels (the data-processing and additivity settings)
    est = VAEMI((2, 8, 8), (2, 8, 8), **TINY)
    assert est.decoder_kind == "mlp"
    est.fit(x, x, steps=2, batch_size=16, progress=False)
    assert math.isfinite(est.estimate(x, x).value)
    colour = VAEMI((6, 9, 7), (3, 9, 7), **TINY)  # odd sizes: the transposed convolutions restore them
    assert colour.decoder_kind == "deconv"
    assert torch.isfinite(colour.log_ratio(torch.rand(4, 6, 9, 7), torch.rand(4, 3, 9, 7))).all()
    assert DeconvDecoder((3, 9, 7), 10, (8, 16), 64)(torch.randn(2, 10)).shape == (2, 3, 9, 7)


def test_vector_vae_runs_with_importance_samples():
    est = VAEMI(5, 3, k=8)
    x, y = torch.randn(64, 5), torch.randn(64, 3)
    loss, value = est._training_step(x, y)
    assert loss.shape == () and torch.isfinite(value)
    assert est.scores(x[:6], y[:6]).shape == (6, 6)


def test_vae_bad_input():
    with pytest.raises(ValueError, match="same height and width"):
        VAEMI((1, 8, 8), (1, 7, 8))
    with pytest.raises(ValueError, match="both as images"):
        VAEMI((1, 8, 8), 10)
    with pytest.raises(ValueError, match="k must be"):
        VAEMI(4, 4, k=0)
    with pytest.raises(ValueError, match="decoder"):
        VAEMI((1, 8, 8), (1, 8, 8), decoder="pixelcnn")
    with pytest.raises(ValueError, match="decoder applies to images"):
        VAEMI(4, 4, decoder="mlp")
