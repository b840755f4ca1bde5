"""Every task by name: :func:`make_task`, :func:`task_names`, the suites and the families.

A name is one of

* a **bmi-style name**, the same text as in the ``bmi`` package (Czyż et al. 2023) wherever the task is the
  same: ``1v1-normal-{rho}``, ``1v1-additive-{epsilon}``, ``1v1-bimodal-{rho}``,
  ``multinormal-dense-{dim_x}-{dim_y}-{off_diag}``, ``multinormal-sparse-{dim_x}-{dim_y}-{k}-{strength}``,
  ``student-identity-{dim_x}-{dim_y}-{df}``, ``student-dense-{dim_x}-{dim_y}-{df}-{off_diag}``, the
  mixtures ``1v1-X-{rho}``, ``1v1-AI``, ``2v1-galaxy-{speed}-{distance}``, ``2v1-waves-{n}-{a}-{f}``,
  ``{d}v1-concentric_gaussians-{n}``, ``mult-sparse-w-inliers-{dim_x}-{dim_y}-{k}-{strength}-{fraction}``,
  each optionally behind transform prefixes ``half_cube-`` (or ``half-cube-``), ``asinh-``,
  ``normal_cdf-``, ``wiggly-``, ``spiral-`` (or ``spiral(speed=0.5)-``), ``swissroll_x-``
  (``spiral-normal_cdf-multinormal-sparse-3-3-2-2.0``).
  Ours, in the same style: ``student-sparse-{dim_x}-{dim_y}-{df}-{k}-{strength}`` and the project's
  first tasks ``gaussian-{dim}-{mi}``, ``cubic-{dim}-{mi}`` (Song & Ermon), ``onehot-{n}`` (ReMINE).
  bmi's ``spiral-`` tasks match in distribution only up to the spiral's speed (see
  :func:`~micore.tasks.transforms.spiral`); every other bmi-style name above is bmi's task.
* a **parameterised name** ``family(key=value,...)`` with a family of :data:`FAMILIES` and Python
  literals: ``multinormal_sparse(dim_x=5,dim_y=5,n_interacting=2,mi=10.0)``; prefixes apply too.
* ``module:Attr``: your own task, a :class:`~micore.tasks.Task` (or ``Sampler``) instance, class or
  zero-argument factory in a module importable from the working directory.
* a name of a family that a package above micore registered with :func:`register_tasks` (micore imports
  nothing above it, so the package registers itself when it is imported): ``import selfconsistency``
  adds the image tasks ``digits-channel-4bits``, ``mnist-channel-4bits-grid64``, ... and their suites.

Every task's ``name`` is a name :func:`make_task` turns back into the same task (tasks built in Python
from an arbitrary matrix have a stable ``...-custom-...`` name instead).

>>> from micore.tasks import make_task, task_names
>>> task = make_task("asinh-student-identity-3-3-2")
>>> task.x_shape, round(task.mi, 4)
((3,), 0.2909)
>>> len(task_names("beyond-normal"))
40
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType

from ..registry import load_object
from .additive import AdditiveUniform
from .base import Sampler, Task
from .classic import CorrelatedGaussian, OneHot
from .mixtures import ai_mixture, concentric_gaussians, galaxy, sparse_with_inliers, waves, x_mixture
from .normal import MultivariateNormal, bivariate_normal, multinormal_dense, multinormal_sparse
from .student import MultivariateStudentT, student_dense, student_identity, student_sparse
from .transforms import TRANSFORMS, bimodal, spiral

__all__ = ["make_task", "task_names", "register_tasks", "TASKS", "SUITES", "FAMILIES"]

_SPARSE_3_5_25 = [f"multinormal-sparse-{d}-{d}-2-2.0" for d in (3, 5, 25)]

_BEYOND_NORMAL = (
    # one-dimensional (bmi's ONE_DIM_TASKS) and the Swiss roll
    "1v1-normal-0.75",
    "normal_cdf-1v1-normal-0.75",
    "1v1-additive-0.1",
    "1v1-additive-0.75",
    "1v1-bimodal-0.75",
    "wiggly-1v1-normal-0.75",
    "half_cube-1v1-normal-0.75",
    "student-identity-1-1-1",
    "asinh-student-identity-1-1-1",
    "swissroll_x-normal_cdf-1v1-normal-0.75",
    # multivariate normal
    *(f"multinormal-dense-{d}-{d}-0.5" for d in (2, 3, 5, 25, 50)),
    *(f"multinormal-sparse-{d}-{d}-2-2.0" for d in (2, 3, 5, 25)),
    # Student-t
    *(f"student-identity-{d}-{d}-{nu}" for d, nu in ((2, 1), (2, 2), (3, 2), (3, 3), (5, 2), (5, 3))),
    # transformed
    *(f"normal_cdf-{b}" for b in _SPARSE_3_5_25),
    *(f"half_cube-{b}" for b in _SPARSE_3_5_25),
    *(f"spiral-{b}" for b in _SPARSE_3_5_25),
    *(f"spiral-normal_cdf-{b}" for b in _SPARSE_3_5_25),
    *(f"asinh-student-identity-{d}-{d}-{nu}" for d, nu in ((2, 1), (3, 2), (5, 2))),
)

_MIXTURES = (
    "1v1-X-0.9",
    "1v1-AI",
    "2v1-galaxy-0.5-3.0",
    "2v1-waves-12-5.0-3.0",
    "3v1-concentric_gaussians-5",
    "3v1-concentric_gaussians-10",
    "5v1-concentric_gaussians-5",
    "5v1-concentric_gaussians-10",
    "25v1-concentric_gaussians-5",
    *(f"mult-sparse-w-inliers-{d}-{d}-2-2.0-{f}" for d in (5, 25) for f in (0.2, 0.5)),
)

_SPARSE_10 = "multinormal_sparse(dim_x=5,dim_y=5,n_interacting=2,mi=10.0)"
_STUDENT_10 = "student_sparse(dim_x=5,dim_y=5,df=5,n_interacting=2,mi=10.0)"
_NORMAL_1D_10 = "multinormal_sparse(dim_x=1,dim_y=1,n_interacting=1,mi=10.0)"
_HIGH_MI = (
    _NORMAL_1D_10,
    f"wiggly-{_NORMAL_1D_10}",
    f"swissroll_x-normal_cdf-{_NORMAL_1D_10}",
    "1v1-additive-2e-05",
    _SPARSE_10,
    f"half_cube-{_SPARSE_10}",
    f"normal_cdf-{_SPARSE_10}",
    f"spiral-{_SPARSE_10}",
    _STUDENT_10,
    f"asinh-{_STUDENT_10}",
    "gaussian-20-10.0",
    "cubic-20-10.0",
    "gaussian-20-20.0",
    "multinormal_sparse(dim_x=25,dim_y=25,n_interacting=2,mi=20.0)",
)

_CLASSIC = (
    *(f"gaussian-20-{m}.0" for m in (2, 4, 6, 8, 10)),
    *(f"cubic-20-{m}.0" for m in (2, 4, 6, 8, 10)),
    "onehot-16",
)

SUITES: MappingProxyType = MappingProxyType(
    {
        "beyond-normal": _BEYOND_NORMAL,  # bmi's 40 benchmark tasks (Czyż et al. 2023, NeurIPS)
        "mixtures": _MIXTURES,  # Czyż et al. 2023, "The Mixtures and the Neural Critics" (MI by Monte Carlo)
        "high-mi": _HIGH_MI,  # ours: the families above at 10 nats and beyond
        "classic": _CLASSIC,  # Song & Ermon's staircase levels (20-d Gaussian, Cubic) and ReMINE's one-hot
    }
)
"""Suite name -> task names."""


def _gaussian(dim: int = 20, mi: float | None = None, rho: float | None = None, cubic: bool = False):
    return CorrelatedGaussian(dim=dim, mi=mi, rho=rho, cubic=cubic)


FAMILIES: MappingProxyType = MappingProxyType(
    {
        "gaussian": _gaussian,
        "onehot": OneHot,
        "bivariate_normal": bivariate_normal,
        "multinormal": MultivariateNormal,
        "multinormal_dense": multinormal_dense,
        "multinormal_sparse": multinormal_sparse,
        "additive_uniform": AdditiveUniform,
        "bimodal": bimodal,
        "student": MultivariateStudentT,
        "student_identity": student_identity,
        "student_dense": student_dense,
        "student_sparse": student_sparse,
        "x_mixture": x_mixture,
        "ai_mixture": ai_mixture,
        "galaxy": galaxy,
        "waves": waves,
        "concentric_gaussians": concentric_gaussians,
        "sparse_with_inliers": sparse_with_inliers,
    }
)
"""Family name -> the callable that ``family(key=value, ...)`` calls with those arguments."""

_NUM = r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_INT = r"(\d+)"


def _num(text: str) -> float | int:
    """``'2'`` -> 2, ``'2.0'`` -> 2.0: a number as written (ints stay ints, so ``df`` prints as given)."""
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _flt(text: str) -> float:
    return float(text)


_PATTERNS: tuple[tuple[str, Callable, tuple[Callable, ...]], ...] = (
    (rf"1v1-normal-{_NUM}", bivariate_normal, (_flt,)),
    (rf"1v1-additive-{_NUM}", AdditiveUniform, (_flt,)),
    (rf"1v1-bimodal-{_NUM}", bimodal, (_flt,)),
    (rf"multinormal-dense-{_INT}-{_INT}-{_NUM}", multinormal_dense, (int, int, _flt)),
    (rf"multinormal-sparse-{_INT}-{_INT}-{_INT}-{_NUM}", multinormal_sparse, (int, int, int, _flt)),
    (rf"student-identity-{_INT}-{_INT}-{_NUM}", student_identity, (int, int, _num)),
    (rf"student-dense-{_INT}-{_INT}-{_NUM}-{_NUM}", student_dense, (int, int, _num, _flt)),
    (rf"student-sparse-{_INT}-{_INT}-{_NUM}-{_INT}-{_NUM}", student_sparse, (int, int, _num, int, _flt)),
    (rf"1v1-X-{_NUM}", x_mixture, (_flt,)),
    (r"1v1-AI", ai_mixture, ()),
    (rf"2v1-galaxy-{_NUM}-{_NUM}", galaxy, (_flt, _flt)),
    (rf"2v1-waves-{_INT}-{_NUM}-{_NUM}", waves, (int, _flt, _flt)),
    (rf"{_INT}v1-concentric_gaussians-{_INT}", concentric_gaussians, (int, int)),
    (rf"mult-sparse-w-inliers-{_INT}-{_INT}-{_INT}-{_NUM}-{_NUM}", sparse_with_inliers, (int, int, int, _flt, _flt)),
    (rf"gaussian-{_INT}-{_NUM}", lambda d, m: CorrelatedGaussian(dim=d, mi=m), (int, _flt)),
    (rf"cubic-{_INT}-{_NUM}", lambda d, m: CorrelatedGaussian(dim=d, mi=m, cubic=True), (int, _flt)),
    (rf"onehot-{_INT}", OneHot, (int,)),
)
_PREFIXES = {**{p: p for p in TRANSFORMS}, "half-cube": "half_cube"}
_SPIRAL_SPEED = re.compile(rf"spiral\(speed={_NUM}\)-")
_PARAMETERISED = re.compile(r"([a-z_][a-z0-9_]*)\((.*)\)", re.DOTALL)
_PATTERN_HELP = (
    "1v1-normal-RHO, 1v1-additive-EPS, 1v1-bimodal-RHO, multinormal-dense-DX-DY-OFFDIAG, "
    "multinormal-sparse-DX-DY-K-STRENGTH, student-identity-DX-DY-DF, student-dense-DX-DY-DF-OFFDIAG, "
    "student-sparse-DX-DY-DF-K-STRENGTH, 1v1-X-RHO, 1v1-AI, 2v1-galaxy-SPEED-DISTANCE, 2v1-waves-N-A-F, "
    "Dv1-concentric_gaussians-N, mult-sparse-w-inliers-DX-DY-K-STRENGTH-FRACTION, gaussian-DIM-MI, "
    "cubic-DIM-MI, onehot-N"
)


class _UnknownName(ValueError):
    """A name that no pattern, family or suite knows (the message lists the known ones)."""


@dataclass(frozen=True)
class _Registered:
    pattern: re.Pattern
    build: Callable[[re.Match], Sampler]
    help: str
    suites: tuple[tuple[str, tuple[str, ...]], ...]


# Families registered from above (pattern text -> family). Their suites are reachable through
# task_names(suite) but stay out of task_names(), SUITES and TASKS: their tasks may need data files.
_REGISTERED: dict[str, _Registered] = {}


def register_tasks(
    pattern: str,
    build: Callable[[re.Match], Sampler],
    *,
    help: str,
    suites: dict[str, Sequence[str]] | None = None,
) -> None:
    """Adds a family of task names to :func:`make_task`, for a package above micore.

    Args:
        pattern: a regular expression that a whole name (after any transform prefixes) must match.
        build: called with the ``re.Match`` of a matching name; returns the task, or raises ValueError
            naming the impossible parameter.
        help: how the names are written (``"DATASET-channel-Bbits[-Ksrc]"``), shown when a name is unknown.
        suites: suite name -> task names, reachable with ``task_names(suite)`` (not in
            ``task_names()``, ``SUITES`` or ``TASKS``).

    Registering the same ``pattern`` again replaces the earlier registration (a reloaded module).
    Names of the built-in families are matched first, so a registration cannot shadow them.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"pattern must be a non-empty regular expression string, got {pattern!r}")
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"pattern {pattern!r} is not a regular expression: {err}") from err
    if not callable(build):
        raise ValueError(f"build must be a callable (re.Match) -> Task, got {build!r}")
    if not isinstance(help, str) or not help.strip():
        raise ValueError(f"help must be a non-empty string, got {help!r}")
    suites = dict(suites or {})
    for suite, names in suites.items():
        if suite in SUITES:
            raise ValueError(f"suites: {suite!r} is a built-in suite")
        other = next((k for k, r in _REGISTERED.items() if k != pattern and suite in dict(r.suites)), None)
        if other is not None:
            raise ValueError(f"suites: {suite!r} is already registered by pattern {other!r}")
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"suites: {suite!r} must map to a sequence of task names, got {names!r}")
    frozen = tuple((k, tuple(v)) for k, v in suites.items())
    _REGISTERED[pattern] = _Registered(compiled, build, help.strip(), frozen)


def _registered_suites() -> dict[str, tuple[str, ...]]:
    return {k: v for r in _REGISTERED.values() for k, v in r.suites}


def task_names(suite: str | None = None) -> list[str]:
    """The names of a suite (``beyond-normal``, ``mixtures``, ``high-mi``, ``classic``), or of all of them.

    A suite registered with :func:`register_tasks` is reachable by its name; ``task_names()`` lists the
    built-in suites only.
    """
    if suite is None:
        return list(dict.fromkeys(n for names in SUITES.values() for n in names))
    registered = _registered_suites()
    if suite in registered:
        return list(registered[suite])
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; the suites are {', '.join([*SUITES, *registered])}")
    return list(SUITES[suite])


def _unknown(name: str) -> str:
    known = task_names()
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    registered = "".join(f", {r.help}" for r in _REGISTERED.values())
    return (
        f"unknown task {name!r}.{hint} Known names ({len(known)}): {', '.join(known)}. "
        f"Patterns: {_PATTERN_HELP}{registered}; prefixes {', '.join(p + '-' for p in _PREFIXES)}; "
        f"families: {', '.join(f + '(...)' for f in FAMILIES)}; or module:Attr for your own task."
    )


def _parameterised(name: str, family: str, args: str) -> Task:
    if family not in FAMILIES:
        raise ValueError(f"unknown task family {family!r} in {name!r}; the families are {', '.join(FAMILIES)}")
    try:
        call = ast.parse(f"f({args})", mode="eval").body
        positional = [ast.literal_eval(a) for a in call.args]
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        if any(k is None for k in keywords):
            raise ValueError("** arguments")
    except (SyntaxError, ValueError) as err:
        raise ValueError(f"task {name!r}: the arguments must be Python literals, key=value ({err})") from err
    try:
        return FAMILIES[family](*positional, **keywords)
    except TypeError as err:
        raise ValueError(f"task {name!r}: {err}") from err


def _user_task(name: str) -> Sampler:
    obj = load_object(name, "task")
    if not isinstance(obj, Sampler):
        if not callable(obj):
            raise ValueError(
                f"task {name!r}: {name.strip().replace(':', '.')} is a {type(obj).__name__}, not a task or factory"
            )
        obj = obj()
    if not isinstance(obj, Sampler):
        raise ValueError(
            f"task {name!r}: {name.strip().replace(':', '.')}() returned a {type(obj).__name__}, not a Task/Sampler"
        )
    return obj


def _base(name: str) -> Task:
    m = _PARAMETERISED.fullmatch(name)
    if m:
        return _parameterised(name, m.group(1), m.group(2))
    for pattern, build, converters in _PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            return build(*(conv(text) for conv, text in zip(converters, m.groups(), strict=True)))
    for registered in list(_REGISTERED.values()):
        m = registered.pattern.fullmatch(name)
        if m:
            return registered.build(m)
    raise _UnknownName(_unknown(name))


def make_task(name: str) -> Sampler:
    """The task called ``name`` (see the module docstring for the forms a name takes).

    Raises ValueError for an unknown name (listing the known ones) or impossible parameters (naming the
    parameter, e.g. ``1v1-normal-1.5`` says ``rho must be a number in (-1, 1)``).

    >>> make_task("half_cube-1v1-normal-0.75").name
    'half_cube-1v1-normal-0.75'
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a task name must be a non-empty string, got {name!r}")
    name = name.strip()
    if ":" in name and "(" not in name:
        return _user_task(name)
    prefixes = []
    rest = name
    while True:
        speed = _SPIRAL_SPEED.match(rest)
        if speed:
            prefixes.append(partial(spiral, speed=float(speed.group(1))))
            rest = rest[speed.end() :]
            continue
        head = next((p for p in _PREFIXES if rest.startswith(p + "-")), None)
        if head is None:
            break
        prefixes.append(TRANSFORMS[_PREFIXES[head]])
        rest = rest[len(head) + 1 :]
    try:
        task = _base(rest)
    except _UnknownName:
        raise ValueError(_unknown(name)) from None
    except ValueError as err:
        if str(err).startswith("task "):
            raise
        raise ValueError(f"task {name!r}: {err}") from err
    for transform in reversed(prefixes):
        try:
            task = transform(task)
        except ValueError as err:
            raise ValueError(f"task {name!r}: {err}") from err
    return task


TASKS: MappingProxyType = MappingProxyType({n: partial(make_task, n) for n in task_names()})
"""Every suite's task name -> a zero-argument factory (``TASKS["1v1-AI"]()``)."""
