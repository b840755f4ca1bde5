r""":math:`I_{GM}` with VAEs (Song & Ermon 2020, Eq. 9 and App. B.2): three VAEs whose log-likelihoods
are replaced by the importance-weighted bound (Burda et al. 2016) with ``K`` samples (``K = 1``: the ELBO).

.. math:: \log p(v) \ge \mathcal L_K(v) = E_{z_{1:K} \sim q(z|v)}\Big[\log \frac1K \sum_{k=1}^K
          \frac{p(v|z_k)\,p(z_k)}{q(z_k|v)}\Big], \qquad \mathcal L_1 \le \mathcal L_K \le \log p(v).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from micore.validation import Shape, check_positive_int

from .base import GenerativeMI
from .pixels import discretized_logistic_log_prob

__all__ = [
    "VAEMI",
    "VAE",
    "importance_weighted_bound",
    "ConvEncoder",
    "MLPEncoder",
    "MLPDecoder",
    "DeconvDecoder",
    "DiscretizedLogisticPixels",
    "GaussianVector",
]


def importance_weighted_bound(log_likelihood: Tensor, log_prior: Tensor, log_posterior: Tensor) -> Tensor:
    r""":math:`\log \frac1K \sum_k \exp(\log p(v|z_k) + \log p(z_k) - \log q(z_k|v))`: ``[K, n] -> [n]``.

    With ``z_k ~ q(z|v)`` its expectation is :math:`\mathcal L_K` (IWAE; Burda et al. 2016, Eq. 8), a
    **lower bound** on :math:`\log p(v)` for every ``K``; ``K = 1`` is the ELBO.
    """
    log_w = log_likelihood + log_prior - log_posterior
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def _conv_size(n: int) -> int:
    return (n + 1) // 2  # conv k5, s2, p2: ceil(n / 2)


class ConvEncoder(nn.Module):
    """The seed's image encoder: the conv critic's trunk (conv 64 k5 s2 p2, conv 128 k5 s2 p2, fc 1024),
    ReLU, then a linear layer to the ``2 * latent`` Gaussian parameters (App. B.2). ``[n, C, H, W] -> [n, 2L]``."""

    def __init__(self, shape: Shape, latent: int, channels: tuple[int, int] = (64, 128), hidden: int = 1024):
        super().__init__()
        c, h, w = shape
        c1, c2 = channels
        h2, w2 = _conv_size(_conv_size(h)), _conv_size(_conv_size(w))
        self.net = nn.Sequential(
            nn.Conv2d(c, c1, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(c2 * h2 * w2, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * latent),
        )

    def forward(self, v: Tensor) -> Tensor:
        return self.net(v)


class MLPEncoder(nn.Module):
    """Flattened ``v`` -> ``hidden`` -> ``hidden`` -> ``2 * latent`` (ReLU between)."""

    def __init__(self, shape: Shape, latent: int, hidden: int = 400):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * latent),
        )

    def forward(self, v: Tensor) -> Tensor:
        return self.net(v)


class MLPDecoder(nn.Module):
    """The seed's MNIST decoder: ``z`` -> 400 -> 400 -> one mean per entry of ``shape`` (ReLU between)."""

    def __init__(self, shape: Shape, latent: int, hidden: int = 400):
        super().__init__()
        self.shape = tuple(shape)
        self.net = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(shape)),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.shape)


class DeconvDecoder(nn.Module):
    """The seed's CIFAR-10 decoder: the transposed-convolution mirror of :class:`ConvEncoder`
    (fc 1024, fc to 128 maps of ``H/4 x W/4``, deconv 64 k5 s2 p2, deconv ``C`` k5 s2 p2; ReLU between)."""

    def __init__(self, shape: Shape, latent: int, channels: tuple[int, int] = (64, 128), hidden: int = 1024):
        super().__init__()
        c, h, w = shape
        c1, c2 = channels
        h1, w1 = _conv_size(h), _conv_size(w)
        h2, w2 = _conv_size(h1), _conv_size(w1)
        self.start = (c2, h2, w2)
        # output_padding restores odd or even sizes: a transposed k5 s2 p2 maps n to 2n - 1 + padding
        self.fc = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, c2 * h2 * w2), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 5, stride=2, padding=2, output_padding=(h1 - 2 * h2 + 1, w1 - 2 * w2 + 1)),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, c, 5, stride=2, padding=2, output_padding=(h - 2 * h1 + 1, w - 2 * w1 + 1)),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.fc(z).view(-1, *self.start))


class DiscretizedLogisticPixels(nn.Module):
    r""":math:`\log p(v|z)` of 8-bit pixels: a discretized logistic per pixel around the decoder's mean, with
    a learned per-pixel log-scale (see :func:`~genmi.pixels.discretized_logistic_log_prob`).

    Why this likelihood: it is a normalised distribution over the 256 levels of the pixels, so
    :math:`\log p(x,y) - \log p(x) - \log p(y)` is the log-ratio of proper distributions and
    :math:`I_{GM}` targets the MI of the (quantized) pixels, as the dequantized flows do. A Bernoulli
    likelihood is not normalised on grey levels, and a Gaussian density on ``[0, 1]`` data is
    unbounded (constant background pixels drive its variance, and the likelihood, to infinity).
    """

    def __init__(self, shape: Shape):
        super().__init__()
        self.log_scale = nn.Parameter(torch.full(tuple(shape), math.log(0.1)))

    def forward(self, v: Tensor, mean: Tensor) -> Tensor:
        return discretized_logistic_log_prob(v, mean, self.log_scale).flatten(-len(self.log_scale.shape)).sum(-1)


class GaussianVector(nn.Module):
    r""":math:`\log p(v|z) = \log \mathcal N(v; \mu(z), \operatorname{diag}\sigma^2)` with a learned
    per-dimension :math:`\sigma` (a linear-Gaussian decoder of this form is exactly probabilistic PCA)."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.log_std = nn.Parameter(torch.zeros(tuple(shape)))

    def forward(self, v: Tensor, mean: Tensor) -> Tensor:
        return Normal(mean, self.log_std.exp()).log_prob(v).flatten(-len(self.log_std.shape)).sum(-1)


class VAE(nn.Module):
    """A VAE with prior :math:`N(0, I)`, a Gaussian encoder :math:`q(z|v)` and a decoder likelihood.

    ``log_prob(v)`` returns one draw of the importance-weighted bound with ``k`` samples (``[n]``).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, latent: int, k: int = 1):
        super().__init__()
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.latent, self.k = latent, k

    def log_prob(self, v: Tensor) -> Tensor:
        mean, log_std = self.encoder(v).chunk(2, dim=-1)
        q = Normal(mean, log_std.exp())
        z = q.rsample((self.k,))  # [K, n, L]
        log_posterior = q.log_prob(z).sum(-1)
        log_prior = Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).sum(-1)
        means = self.decoder(z.flatten(0, 1))  # [K n, *shape]
        vs = v.expand(self.k, *v.shape).flatten(0, 1)
        log_likelihood = self.likelihood(vs, means).view(self.k, v.shape[0])
        return importance_weighted_bound(log_likelihood, log_prior, log_posterior)


class VAEMI(GenerativeMI):
    r""":math:`I_{GM}` with three VAEs for :math:`p(x,y)`, :math:`p(x)`, :math:`p(y)` (Song & Ermon Eq. 9, App. B.2).

    .. math:: \log r(x, y) = \mathcal L_K^{\theta}(x, y) - \mathcal L_K^{\phi}(x) - \mathcal L_K^{\psi}(y)

    each :math:`\mathcal L_K` the importance-weighted bound with ``k`` samples (``k = 1``: the ELBO), which
    is also the training objective (the loss is the mean of the three negative bounds). An **estimate**:
    each term is a *lower* bound on its log-likelihood, so the difference of one joint bound and two
    marginal bounds is neither a lower nor an upper bound on MI (Table 1).

    Images ``(C, H, W)`` (App. B.2): encoder = the conv critic's trunk (conv 64 k5 s2 p2, conv 128 k5 s2
    p2, fc 1024) to the mean and log-std of a 10-d Gaussian; decoder = a 2x400 MLP (``"mlp"``, MNIST) or the
    transposed-convolution mirror of the encoder (``"deconv"``, CIFAR-10); ReLU everywhere but the last
    layers; pixels in ``[0, 1]`` with a discretized logistic likelihood (:class:`DiscretizedLogisticPixels`
    says why). The joint model sees ``x`` and ``y`` stacked on channels (they need the same ``H, W``).
    Adam lr 1e-4 (``default_lr``).

    Vectors (not specified by the seed): 2x400 MLP encoder and decoder, a Gaussian decoder with learned
    per-dimension variances; the joint model sees ``[x; y]``.

    Args:
        x_dim, y_dim: both int widths, or both image shapes ``(C, H, W)`` with equal ``H, W`` (any ``C``:
            pairs of images stacked on channels are fine).
        latent: latent width; default 10 for images (the seed's), and each model's own input width for
            vectors (the 20-d Gaussian joint needs 20 latent dimensions to be representable).
        k: importance samples for training and evaluation (1: the ELBO).
        decoder: ``"mlp"`` or ``"deconv"`` for images; default ``"deconv"`` when the channel count of ``x``
            is a multiple of 3 (colour images, possibly stacked), else ``"mlp"``.
        channels, hidden: the conv trunk's channels and fully connected width (seed: (64, 128), 1024).
        decoder_hidden: width of the MLP decoder's two hidden layers (seed: 400).
    """

    default_lr = 1e-4

    # the reparameterised draws inside the step: one generator cannot give each member of a vmap its
    # own seed's stream, so ensembles of VAEMI loop (micore.train_ensemble)
    ensemble_batches: ClassVar[bool] = False

    def __init__(
        self,
        x_dim,
        y_dim,
        *,
        latent: int | None = None,
        k: int = 1,
        decoder: str | None = None,
        channels: tuple[int, int] = (64, 128),
        hidden: int = 1024,
        decoder_hidden: int = 400,
    ):
        super().__init__(x_dim, y_dim)
        self.k = check_positive_int(k, "k")
        xs, ys = self.x_shape, self.y_shape
        images = len(xs) == 3 and len(ys) == 3
        if images and xs[1:] != ys[1:]:
            raise ValueError(
                f"VAEMI stacks x and y on channels: they need the same height and width, got x_dim={xs}, y_dim={ys}"
            )
        if not images and not (len(xs) == 1 and len(ys) == 1):
            raise ValueError(
                f"VAEMI needs both x and y as vectors (int widths) or both as images (C, H, W); got "
                f"x_dim={xs}, y_dim={ys}"
            )
        if latent is not None:
            check_positive_int(latent, "latent")
        if images:
            if decoder is None:
                decoder = "deconv" if xs[0] % 3 == 0 else "mlp"
            if decoder not in ("mlp", "deconv"):
                raise ValueError(f'decoder must be "mlp" or "deconv", got {decoder!r}')
            if (
                not isinstance(channels, (tuple, list))
                or len(channels) != 2
                or not all(isinstance(c, int) and c > 0 for c in channels)
            ):
                raise ValueError(f"channels must be two positive ints, got {channels!r}")
            check_positive_int(hidden, "hidden")
            check_positive_int(decoder_hidden, "decoder_hidden")
            self.pixels = (True, True)
        elif decoder is not None:
            raise ValueError(f"decoder applies to images only; x and y are vectors (got decoder={decoder!r})")
        self.latent, self.decoder_kind = latent, decoder
        joint_shape = (xs[0] + ys[0], *xs[1:]) if images else (xs[0] + ys[0],)

        def make(shape: Shape) -> VAE:
            if not images:
                width = latent or shape[0]
                return VAE(
                    MLPEncoder(shape, width, decoder_hidden),
                    MLPDecoder(shape, width, decoder_hidden),
                    GaussianVector(shape),
                    width,
                    self.k,
                )
            width = latent or 10
            dec = (
                MLPDecoder(shape, width, decoder_hidden)
                if decoder == "mlp"
                else DeconvDecoder(shape, width, tuple(channels), hidden)
            )
            return VAE(
                ConvEncoder(shape, width, tuple(channels), hidden), dec, DiscretizedLogisticPixels(shape), width, self.k
            )

        self.joint, self.model_x, self.model_y = make(joint_shape), make(xs), make(ys)
        self._images = images

    def _join(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        kind = f", decoder={self.decoder_kind!r}" if self._images else ""
        return f"k={self.k}, latent={self.latent or ('10' if self._images else 'input width')}{kind}"
