r"""MI-preserving maps applied to any task: same MI, harder geometry.

For injective continuous maps :math:`f, g`, :math:`I(f(X); g(Y)) = I(X; Y)`: the invariance the whole
benchmark of Czyż et al. (2023, "Beyond Normal", NeurIPS) is built on (for diffeomorphisms already in
Kraskov, Stögbauer & Grassberger 2004, "Estimating mutual information", Phys. Rev. E 69). The log-ratio
is invariant too: the Jacobians of :math:`f` and :math:`g` cancel between :math:`p(f(x), g(y))` and
:math:`p(f(x))\,p(g(y))`, so

.. math:: \log r_{f(X), g(Y)}(u, v) = \log r_{X,Y}(f^{-1}(u), g^{-1}(v)),

which :class:`Transformed` computes with each map's exact (or bisection-exact) inverse.

Prefixes, as in bmi's task names (``half_cube-1v1-normal-0.75``, ``spiral-multinormal-sparse-3-3-2-2.0``):

========================  =========================================================  ===============
prefix                    map (elementwise unless said)                               inverse
========================  =========================================================  ===============
``half_cube-``            :math:`t \mapsto t\sqrt{|t|}` (long tails)                 :math:`\mathrm{sign}(u)|u|^{2/3}`
``asinh-``                :math:`t \mapsto \operatorname{asinh} t` (shortens tails)   :math:`\sinh`
``normal_cdf-``           :math:`t \mapsto \Phi(t)` (uniform margins from normal)     :math:`\Phi^{-1}`
``wiggly-``               :math:`t + \sum_j a_j \sin(b_j t + c_j)`, monotone          bisection
``spiral-``               :math:`x \mapsto \exp(v\lVert x\rVert^2 A)\,x`, A a plane   rotate back by the same angle
                          rotation generator: the angle grows with the norm          (the norm is kept)
``swissroll_x-``          1-d :math:`x \in [0,1]` to the 2-d Swiss roll               from the norm
========================  =========================================================  ===============
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .base import Task, format_number

__all__ = [
    "Map",
    "ndtr",
    "HalfCube",
    "Asinh",
    "NormalCDF",
    "Wiggly",
    "Spiral",
    "SwissRoll",
    "MixtureQuantile",
    "Transformed",
    "half_cube",
    "asinh",
    "normal_cdf",
    "wiggly",
    "spiral",
    "swissroll_x",
    "bimodal",
    "TRANSFORMS",
]


class Map:
    """An injective map of one variable, ``[n, *in_shape] -> [n, *out_shape]``, with its inverse.

    ``forward`` and ``inverse`` act on working-dtype tensors; ``out_shape(shape)`` says what a shape
    becomes (``None``: the map does not accept that shape).
    """

    prefix: str = ""

    def forward(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def inverse(self, u: Tensor) -> Tensor:
        raise NotImplementedError

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        return shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def ndtr(t: Tensor) -> Tensor:
    r"""The standard normal CDF as :math:`\tfrac12\operatorname{erfc}(-t/\sqrt2)`: accurate in the lower tail.

    (``torch.special.ndtr`` goes through ``1 + erf`` and loses the lower tail: 2 % off at -8, 0 below -8.3.)
    """
    return 0.5 * torch.special.erfc(-t / math.sqrt(2.0))


class HalfCube(Map):
    r""":math:`t \mapsto t\sqrt{|t|}` elementwise (bmi's half-cube: long tails from light ones)."""

    def forward(self, t):
        return t * t.abs().sqrt()

    def inverse(self, u):
        return torch.sign(u) * u.abs().pow(2.0 / 3.0)


class Asinh(Map):
    r""":math:`t \mapsto \operatorname{asinh} t` elementwise (bmi's asinh: shortens the Student-t tails)."""

    def forward(self, t):
        return torch.asinh(t)

    def inverse(self, u):
        return torch.sinh(u)


class NormalCDF(Map):
    r""":math:`t \mapsto \Phi(t)` elementwise, the standard normal CDF (normal margins become uniform).

    In float32 :math:`\Phi(t)` rounds to 1 for :math:`t > 5.4`; the task draws in float64, so ask for
    ``dtype=torch.float64`` where those tails matter (the log-ratio of a rounded sample is infinite).
    """

    def forward(self, t):
        return ndtr(t)

    def inverse(self, u):
        return torch.special.ndtri(u)


def _bisect(fn: Callable[[Tensor], Tensor], target: Tensor, low: Tensor, high: Tensor, steps: int = 60) -> Tensor:
    """The root of the increasing ``fn(t) = target`` in ``[low, high]``, elementwise, by bisection."""
    for _ in range(steps):
        mid = 0.5 * (low + high)
        above = fn(mid) > target
        high = torch.where(above, mid, high)
        low = torch.where(above, low, mid)
    return 0.5 * (low + high)


class Wiggly(Map):
    r"""bmi's wiggly maps, elementwise: strictly increasing, so injective.

    ``which="x"``: :math:`t + 0.4\sin t + 0.2\sin(1.7t + 1) + 0.03\sin(3.3t - 2.5)` (slope ≥ 0.161);
    ``which="y"``: :math:`t - 0.4\sin 0.4t + 0.17\sin(1.3t + 3.5) + 0.02\sin(4.3t - 2.5)` (slope ≥ 0.533).
    The inverse is found by bisection in :math:`[u - a, u + a]`, :math:`a` the sum of the amplitudes.
    """

    _TERMS = {
        "x": ((0.4, 1.0, 0.0), (0.2, 1.7, 1.0), (0.03, 3.3, -2.5)),
        "y": ((-0.4, 0.4, 0.0), (0.17, 1.3, 3.5), (0.02, 4.3, -2.5)),
    }

    def __init__(self, which: str = "x"):
        if which not in self._TERMS:
            raise ValueError(f"which must be 'x' or 'y', got {which!r}")
        self.which = which
        self.terms = self._TERMS[which]
        self.reach = sum(abs(a) for a, _, _ in self.terms)

    def __repr__(self) -> str:
        return f"Wiggly({self.which!r})"

    def forward(self, t):
        out = t.clone()
        for a, b, c in self.terms:
            out = out + a * torch.sin(b * t + c)
        return out

    def inverse(self, u):
        return _bisect(self.forward, u, u - self.reach - 1e-9, u + self.reach + 1e-9)


class Spiral(Map):
    r""":math:`x \mapsto \exp(v\lVert x\rVert^2 A)\,x`: turn the plane ``(i, j)`` by :math:`v\lVert x\rVert^2`.

    ``A`` is the generator of so(d) with :math:`A_{ij} = -1`, :math:`A_{ji} = 1` (bmi's Spiral, Czyż et al.
    2023); its exponential is a Givens rotation. A rotation keeps the norm, so the inverse rotates back
    by the angle read from :math:`\lVert u\rVert`. Needs a variable of dimension ≥ 2.
    """

    def __init__(self, speed: float, plane: tuple[int, int] = (0, 1)):
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed):
            raise ValueError(f"speed must be a finite number, got {speed!r}")
        i, j = plane
        if not 0 <= i < j:
            raise ValueError(f"plane must be two indices i < j, got {plane!r}")
        self.speed, self.plane = float(speed), (i, j)

    def __repr__(self) -> str:
        return f"Spiral(speed={self.speed:.4g}, plane={self.plane})"

    def out_shape(self, shape):
        return shape if len(shape) == 1 and shape[0] > self.plane[1] else None

    def _rotate(self, t: Tensor, angle: Tensor) -> Tensor:
        i, j = self.plane
        c, s = torch.cos(angle), torch.sin(angle)
        out = t.clone()
        out[:, i] = c * t[:, i] - s * t[:, j]
        out[:, j] = s * t[:, i] + c * t[:, j]
        return out

    def forward(self, t):
        return self._rotate(t, self.speed * (t * t).sum(-1))

    def inverse(self, u):
        return self._rotate(u, -self.speed * (u * u).sum(-1))


class SwissRoll(Map):
    r"""bmi's Swiss roll: :math:`x \in [0, 1] \mapsto (t\cos t, t\sin t)/21`, :math:`t = 1.5\pi(1 + 2x)`.

    An embedding of a 1-d variable into the plane (``[n, 1] -> [n, 2]``), injective for every real ``x``
    except a null set; the MI is unchanged, the samples lie on a curve. Inverse: :math:`|t| = 21\lVert u\rVert`,
    the sign of ``t`` chosen by which of :math:`\pm|t|` maps back onto ``u``.
    """

    def out_shape(self, shape):
        return (2,) if tuple(shape) == (1,) else None

    @staticmethod
    def _roll(t: Tensor) -> Tensor:
        return torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=-1) / 21.0

    def forward(self, x):
        return self._roll(1.5 * math.pi * (1.0 + 2.0 * x[:, 0]))

    def inverse(self, u):
        r = 21.0 * u.norm(dim=-1)
        closer = (self._roll(r) - u).norm(dim=-1) <= (self._roll(-r) - u).norm(dim=-1)
        t = torch.where(closer, r, -r)
        return ((t / (1.5 * math.pi) - 1.0) / 2.0)[:, None]


class MixtureQuantile(Map):
    r""":math:`t \mapsto F^{-1}(\Phi(t))` elementwise, ``F`` the CDF of a mixture of unit-variance normals.

    Turns a standard normal margin into a multimodal one (bmi's ``1v1-bimodal``:
    :math:`F_X = 0.3\Phi(t) + 0.7\Phi(t-5)`, :math:`F_Y = 0.5\Phi(t+1) + 0.5\Phi(t-3)`). Solved by bisection
    in :math:`[t + \min\mu, t + \max\mu]` (where the root must lie), comparing lower tails
    :math:`F(z)` with :math:`\Phi(t)` for :math:`t \le 0` and upper tails :math:`1 - F(z)` with
    :math:`\Phi(-t)` for :math:`t > 0`, so neither tail loses its digits; the inverse is :math:`\Phi^{-1}(F(u))`
    (from the smaller tail).
    """

    def __init__(self, weights, means):
        w = torch.as_tensor(weights, dtype=torch.float64)
        if w.dim() != 1 or len(w) != len(means) or not bool((w > 0).all()):
            raise ValueError("weights must be positive, one per mean")
        self.weights = w / w.sum()
        self.means = torch.as_tensor(means, dtype=torch.float64)

    def __repr__(self) -> str:
        return f"MixtureQuantile(weights={self.weights.tolist()}, means={self.means.tolist()})"

    def _tail(self, z, upper: bool):
        """``F(z)`` (``upper=False``) or ``1 - F(z)``, each from the normal CDF of its own tail."""
        m, w = self.means.to(z), self.weights.to(z)
        arg = (m - z[..., None]) if upper else (z[..., None] - m)
        return (w * ndtr(arg)).sum(-1)

    def forward(self, t):
        lower, upper = ndtr(t), ndtr(-t)
        left = t <= 0

        def increasing(z):  # zero at the root, increasing in z
            return torch.where(left, self._tail(z, False) - lower, upper - self._tail(z, True))

        lo, hi = t + float(self.means.min()) - 1e-6, t + float(self.means.max()) + 1e-6
        return _bisect(increasing, torch.zeros_like(t), lo, hi, steps=60)

    def inverse(self, u):
        f, s = self._tail(u, False), self._tail(u, True)
        return torch.where(f <= s, torch.special.ndtri(f), -torch.special.ndtri(s))


class Transformed(Task):
    r"""``base`` pushed through ``map_x`` on ``x`` and ``map_y`` on ``y``: :math:`(f(X), g(Y))`, same MI.

    ``mi`` and ``mi_stderr`` are the base task's; :meth:`log_ratio` is the base's at the inverses (module
    docstring). ``name`` defaults to ``{prefix}-{base.name}``.

    Args:
        base: any :class:`Task`.
        map_x, map_y: a :class:`Map` or ``None`` (identity).
        prefix: the name prefix (e.g. ``"half_cube"``).
        name: overrides the name (e.g. a mixture task named after its shape).

    >>> from micore.tasks.normal import bivariate_normal
    >>> task = Transformed(bivariate_normal(0.75), HalfCube(), HalfCube(), prefix="half_cube")
    >>> task.name, round(task.mi, 4)
    ('half_cube-1v1-normal-0.75', 0.4133)
    """

    def __init__(
        self,
        base: Task,
        map_x: Map | None,
        map_y: Map | None,
        *,
        prefix: str = "transformed",
        name: str | None = None,
        params: dict | None = None,
    ):
        if not isinstance(base, Task):
            raise ValueError(f"base must be a Task, got {type(base).__name__}")
        shapes = []
        for m, shape, what in ((map_x, base.x_shape, "x"), (map_y, base.y_shape, "y")):
            out = shape if m is None else m.out_shape(tuple(shape))
            if out is None:
                raise ValueError(
                    f"{prefix}: {m!r} does not apply to {what} of shape {tuple(shape)} (task {base.name!r})"
                )
            shapes.append(tuple(out))
        self.base, self.map_x, self.map_y = base, map_x, map_y
        self.x_shape, self.y_shape = shapes
        self.name = name if name is not None else f"{prefix}-{base.name}"
        self._params = dict(params) if params is not None else {"base": base.name, "transform": prefix}

    @property
    def mi(self) -> float:
        return self.base.mi

    @property
    def mi_stderr(self) -> float:
        return self.base.mi_stderr

    @property
    def has_log_ratio(self) -> bool:
        return self.base.has_log_ratio

    def _sample(self, n, generator, device):
        x, y = self.base._sample(n, generator, device)
        return (x if self.map_x is None else self.map_x.forward(x)), (
            y if self.map_y is None else self.map_y.forward(y)
        )

    def _log_ratio(self, x, y):
        x = x if self.map_x is None else self.map_x.inverse(x)
        y = y if self.map_y is None else self.map_y.inverse(y)
        return self.base._log_ratio(x, y)


def half_cube(task: Task) -> Transformed:
    """``half_cube-{name}``: :class:`HalfCube` on both variables."""
    return Transformed(task, HalfCube(), HalfCube(), prefix="half_cube")


def asinh(task: Task) -> Transformed:
    """``asinh-{name}``: :class:`Asinh` on both variables."""
    return Transformed(task, Asinh(), Asinh(), prefix="asinh")


def normal_cdf(task: Task) -> Transformed:
    """``normal_cdf-{name}``: :class:`NormalCDF` on both variables."""
    return Transformed(task, NormalCDF(), NormalCDF(), prefix="normal_cdf")


def wiggly(task: Task) -> Transformed:
    """``wiggly-{name}``: ``Wiggly("x")`` on x, ``Wiggly("y")`` on y."""
    return Transformed(task, Wiggly("x"), Wiggly("y"), prefix="wiggly")


def spiral(task: Task, speed: float | None = None) -> Transformed:
    r"""``spiral-{name}``: :class:`Spiral` on x in the plane (0, 1) and on y in (1, 2) ((0, 1) for 2-d y).

    Default speed: 1 divided by each variable's dimension, as bmi's ``transform_spiral_task`` with
    ``normalize_speed=True`` (another bmi version used 1/3 for both, so bmi's ``spiral-`` tasks may wind
    differently; the MI does not depend on the speed). With ``speed``: that speed for both, undivided,
    and the name ``spiral(speed={speed})-{name}``. Both variables need dimension ≥ 2.
    """
    dx, dy = task.x_shape, task.y_shape
    if len(dx) != 1 or len(dy) != 1 or dx[0] < 2 or dy[0] < 2:
        raise ValueError(f"spiral needs vector x and y of dimension >= 2, task {task.name!r} has {dx} and {dy}")
    sx, sy = (1.0 / dx[0], 1.0 / dy[0]) if speed is None else (speed, speed)
    plane_y = (1, 2) if dy[0] >= 3 else (0, 1)
    params = {"base": task.name, "transform": "spiral", "speed_x": sx, "speed_y": sy}
    prefix = "spiral" if speed is None else f"spiral(speed={format_number(float(speed))})"
    return Transformed(task, Spiral(sx, (0, 1)), Spiral(sy, plane_y), prefix=prefix, params=params)


def swissroll_x(task: Task) -> Transformed:
    """``swissroll_x-{name}``: x (1-d, meant to lie in [0, 1]) rolled into the plane; y unchanged."""
    return Transformed(task, SwissRoll(), None, prefix="swissroll_x")


TRANSFORMS: dict[str, Callable[[Task], Transformed]] = {
    "half_cube": half_cube,
    "asinh": asinh,
    "normal_cdf": normal_cdf,
    "wiggly": wiggly,
    "spiral": spiral,
    "swissroll_x": swissroll_x,
}
"""Name prefix -> transform, as the registry applies them (``half-cube`` is accepted for ``half_cube``)."""


def bimodal(rho: float = 0.75) -> Transformed:
    r"""bmi's ``1v1-bimodal-{rho}``: ``1v1-normal-{rho}`` with both margins made bimodal by :class:`MixtureQuantile`.

    :math:`X = F_X^{-1}(\Phi(X_0))`, :math:`F_X = 0.3\Phi(t) + 0.7\Phi(t - 5)`; :math:`Y = F_Y^{-1}(\Phi(Y_0))`,
    :math:`F_Y = 0.5\Phi(t + 1) + 0.5\Phi(t - 3)`. Increasing bijections: :math:`I = -\tfrac12\log(1-\rho^2)`.
    """
    from .normal import bivariate_normal

    base = bivariate_normal(rho)
    mx, my = MixtureQuantile([0.3, 0.7], [0.0, 5.0]), MixtureQuantile([0.5, 0.5], [-1.0, 3.0])
    name = f"1v1-bimodal-{format_number(base.params['rho'])}"
    return Transformed(base, mx, my, name=name, params=base.params)
