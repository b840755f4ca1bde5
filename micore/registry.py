"""The estimator-registry protocol: each family describes its estimators once, by name; and
:func:`load_object`, the one importer of a user's ``package.module:attr`` (estimators and tasks).

``discmi`` and ``genmi`` each export ``ESTIMATORS``, a dict of :class:`EstimatorSpec` built with
:func:`merge`; ``selfconsistency.registry`` merges the two. A spec knows its canonical name, its
optional ``:arg`` (parsed and canonicalised: ``smile``, ``smile:5`` and ``smile:5.0`` are one
configuration, ``smile:5``), which inputs it takes (vectors, images), its default options per input
domain (the discriminative critic), its legend title and the names the test suite exercises.

>>> from discmi import ESTIMATORS
>>> smile = ESTIMATORS["smile"]
>>> smile.canonical("5.0"), smile.title("inf")
('smile:5', 'SMILE (τ = ∞)')
>>> est = smile.build("5", (20,), (20,))          # SMILE(tau=5) with the vectors' default critic
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the registry is a leaf every family imports
    from .estimator import MIEstimator

__all__ = [
    "EstimatorSpec",
    "DOMAINS",
    "FAMILIES",
    "merge",
    "lookup",
    "split_name",
    "no_param",
    "number_param",
    "load_object",
    "ObjectNotFound",
    "USER_OBJECT",
]

DOMAINS = ("vectors", "images")
FAMILIES = ("discriminative", "generative")

Parser = Callable[[str | None], str | None]
"""``parse(arg) -> canonical arg``: ``arg`` is the text after ``:`` (``None`` without one); ``None`` back
means the bare name. Raises ValueError (the spec prefixes the estimator's name)."""

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_INF = ("inf", "infty", "∞", "+inf")


def no_param(arg: str | None) -> str | None:
    """The parser of an estimator without a parameter: only the bare name is valid."""
    if arg is not None:
        raise ValueError(f"takes no parameter, got ':{arg}'")
    return None


def _number_text(value: float) -> str:
    # repr is the shortest text that round-trips, so distinct values keep distinct names; 5.0 -> "5"
    if math.isinf(value):
        return "inf"
    text = repr(value + 0.0)  # + 0.0: -0.0 and 0.0 are one configuration
    return text[:-2] if text.endswith(".0") else text


def number_param(
    symbol: str,
    what: str,
    *,
    default: float | None = None,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    allow_inf: bool = False,
    show_default: bool = False,
) -> Parser:
    """A parser of one numeric parameter, canonicalised so that equal values give equal names.

    Args:
        symbol: the parameter's short name in messages (``"tau"``, ``"K"``).
        what: what the text after ``:`` is, for the message on unreadable text.
        default: the value the bare name means (``None``: the bare name is its own configuration).
        integer: an int parameter (``"016"`` -> ``"16"``; ``"2.5"`` is refused).
        minimum, maximum, exclusive_minimum: the valid range.
        allow_inf: ``inf`` (also ``infty``, ``∞``, any case) is a valid value, written ``inf``.
        show_default: the default is written out in the canonical name (``smile`` -> ``smile:5``);
            otherwise a default-valued arg is dropped (``gm-vae:1`` -> ``gm-vae``).

    >>> parse = number_param("tau", "the clip tau", default=5.0, minimum=0, exclusive_minimum=True,
    ...                      allow_inf=True, show_default=True)
    >>> parse(None), parse("5.0"), parse("INF"), parse("0.50")
    ('5', '5', 'inf', '0.5')
    """

    def parse(arg: str | None) -> str | None:
        if arg is None or not arg.strip():
            if default is None or not show_default:
                return None
            return _number_text(default)
        text = arg.strip().lower()
        try:
            if allow_inf and text in _INF:
                value: float = math.inf
            elif integer:
                value = int(text)
            else:
                value = float(text)
                if not math.isfinite(value):  # "nan", or "inf" where it is not allowed
                    raise ValueError(text)
        except ValueError:
            raise ValueError(f"the parameter after ':' is {what}, got {arg!r}") from None
        low_ok = minimum is None or (value > minimum if exclusive_minimum else value >= minimum)
        if not low_ok or (maximum is not None and value > maximum):
            bounds = []
            if minimum is not None:
                bounds.append(f"{'>' if exclusive_minimum else '>='} {_number_text(minimum)}")
            if maximum is not None:
                bounds.append(f"<= {_number_text(maximum)}")
            raise ValueError(f"{symbol} must be {' and '.join(bounds)}, got {arg.strip()}")
        if default is not None and value == default and not show_default:
            return None
        return str(value) if integer else _number_text(value)

    return parse


@dataclass(frozen=True)
class EstimatorSpec:
    """One estimator by name: how to parse its ``:arg``, build it, and title it.

    Args:
        name: the canonical base name (lower case, ``[a-z][a-z0-9-]*``), e.g. ``"smile"``.
        family: ``"discriminative"`` or ``"generative"``.
        summary: one line for ``--help``.
        builder: ``builder(arg, x_shape, y_shape, **options) -> MIEstimator``; ``arg`` is canonical
            (what ``parse`` returned), ``options`` are the domain's defaults updated by the caller's.
        param: ``None``, or the optional ``:arg`` described, its short name first:
            ``"tau, the clip (default 5; 'inf' for none)"``.
        parse: validates and canonicalises the ``:arg`` text (:func:`no_param`, :func:`number_param`).
        aliases: other base names accepted for this one (``"infonce"`` for ``"cpc"``).
        vectors, images: the inputs it takes (flat vectors; ``(C, H, W)`` images).
        arg_required_for: domains where the bare name cannot work (``ba`` needs ``ba:H`` on images).
        options: the keyword options ``builder`` accepts (``("critic",)``); any other is refused.
        defaults: ``{domain: {option: value}}``, e.g. ``{"vectors": {"critic": "joint"}}``.
        legend: the figure-legend title, or ``legend(arg) -> str`` for the canonical ``arg``.
        examples: canonical names the test suite trains and builds (``("smile:5", "smile:inf")``).
        unavailable: why the name cannot be built from shapes at all (then neither domain is supported).

    >>> spec = EstimatorSpec("nwj", "discriminative", "NWJ lower bound", builder=lambda a, xs, ys: ...,
    ...                      images=True, legend="NWJ", examples=("nwj",))
    >>> spec.canonical(None), spec.usage
    ('nwj', 'nwj')
    """

    name: str
    family: str
    summary: str
    builder: Callable[..., MIEstimator] = field(repr=False)
    param: str | None = None
    parse: Parser = field(default=no_param, repr=False)
    aliases: tuple[str, ...] = ()
    vectors: bool = True
    images: bool = False
    arg_required_for: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    legend: str | Callable[[str | None], str] | None = field(default=None, repr=False)
    examples: tuple[str, ...] = ()
    unavailable: str | None = None

    def __post_init__(self):
        for n in (self.name, *self.aliases):
            if not isinstance(n, str) or not _NAME.fullmatch(n):
                raise ValueError(f"estimator name {n!r} must match [a-z][a-z0-9-]* (lower case, no ':')")
        if self.family not in FAMILIES:
            raise ValueError(f"estimator {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.name in self.aliases or len(set(self.aliases)) != len(self.aliases):
            raise ValueError(f"estimator {self.name!r}: aliases {self.aliases} repeat a name")
        if not (self.vectors or self.images) and not self.unavailable:
            raise ValueError(f"estimator {self.name!r} supports neither vectors nor images: say why (unavailable=)")
        if self.unavailable and (self.vectors or self.images):
            raise ValueError(f"estimator {self.name!r}: unavailable= is for names that support no domain")
        if self.param is not None and self.parse is no_param:
            raise ValueError(f"estimator {self.name!r} describes a param but has no parser for it (parse=)")
        for domain in (*self.defaults, *self.arg_required_for):
            if domain not in DOMAINS:
                raise ValueError(f"estimator {self.name!r}: domain must be one of {DOMAINS}, got {domain!r}")
        for domain, opts in self.defaults.items():
            unknown = sorted(set(opts) - set(self.options))
            if unknown:
                raise ValueError(
                    f"estimator {self.name!r}: defaults for {domain} name options {unknown} "
                    f"outside options={self.options}"
                )
        # read-only copies: a frozen spec shared by every caller must not change under them
        object.__setattr__(
            self, "defaults", MappingProxyType({d: MappingProxyType(dict(o)) for d, o in self.defaults.items()})
        )
        for example in self.examples:
            base, arg = split_name(example)
            if base != self.name or self.canonical(arg) != example:
                raise ValueError(f"estimator {self.name!r}: example {example!r} is not a canonical name of it")

    @property
    def param_name(self) -> str | None:
        """The parameter's short name, the first word of ``param`` (``"tau"``)."""
        return None if self.param is None else self.param.split(",")[0].strip()

    @property
    def usage(self) -> str:
        """``"smile[:tau]"``: the name with its optional parameter, for ``--help``."""
        return self.name if self.param is None else f"{self.name}[:{self.param_name}]"

    def parse_arg(self, arg: str | None) -> str | None:
        """The canonical ``arg`` (``"5.0"`` -> ``"5"``); a ValueError naming the estimator if it is bad."""
        try:
            return self.parse(arg)
        except ValueError as err:
            raise ValueError(f"estimator {self.name!r}: {err}") from None

    def canonical(self, arg: str | None = None) -> str:
        """The one name of this configuration: ``canonical("5.0") == canonical(None) == "smile:5"``."""
        arg = self.parse_arg(arg)
        return self.name if arg is None else f"{self.name}:{arg}"

    def title(self, arg: str | None = None) -> str:
        """The figure-legend title of ``name:arg``: ``"SMILE (τ = 5)"``, ``"CPC"``."""
        arg = self.parse_arg(arg)
        if self.legend is None:
            return self.canonical(arg)
        return self.legend if isinstance(self.legend, str) else self.legend(arg)

    def supports(self, domain: str, arg: str | None = None) -> bool:
        """Whether ``name:arg`` can be built for ``domain`` (``"vectors"`` or ``"images"``)."""
        if domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
        ok = self.vectors if domain == "vectors" else self.images
        return ok and (domain not in self.arg_required_for or self.parse_arg(arg) is not None)

    def check(self, arg: str | None = None, domain: str = "vectors", **options) -> tuple[str | None, dict]:
        """Validates ``name:arg`` for ``domain`` with ``options``; returns the canonical arg and the options
        the builder gets (the domain's defaults updated by ``options``). Every problem is a ValueError."""
        arg = self.parse_arg(arg)
        if self.unavailable:
            raise ValueError(f"estimator {self.name!r} cannot be built from shapes: {self.unavailable}")
        if not self.supports(domain, arg):
            if self.vectors if domain == "vectors" else self.images:
                raise ValueError(
                    f"estimator {self.name!r} needs its parameter on {domain}: write "
                    f"{self.name}:<{self.param_name}>; {self.param}"
                )
            takes = [d for d in DOMAINS if self.supports(d, arg) or d in self.arg_required_for]
            raise ValueError(f"estimator {self.name!r} does not support {domain} (it takes {', '.join(takes)})")
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(
                f"estimator {self.name!r} does not take option(s) {unknown}; it takes {list(self.options) or 'none'}"
            )
        return arg, {**self.defaults.get(domain, {}), **options}

    def build(self, arg: str | None, x_shape, y_shape, *, domain: str = "vectors", **options) -> MIEstimator:
        """A fresh estimator for ``x_shape``, ``y_shape``: ``spec.build("5", (20,), (20,), critic="separable")``."""
        arg, opts = self.check(arg, domain, **options)
        return self.builder(arg, x_shape, y_shape, **opts)

    def factory(
        self, arg: str | None = None, *, domain: str = "vectors", **options
    ) -> Callable[[tuple, tuple], MIEstimator]:
        """``(x_shape, y_shape) -> MIEstimator``, checked now (a bad name fails before any training)."""
        arg, opts = self.check(arg, domain, **options)
        builder = self.builder

        def make(x_shape, y_shape) -> MIEstimator:
            return builder(arg, x_shape, y_shape, **opts)

        make.__qualname__ = make.__name__ = self.canonical(arg)
        return make


def split_name(name: str) -> tuple[str, str | None]:
    """``" SMILE:5 "`` -> ``("smile", "5")``; ``"cpc"`` -> ``("cpc", None)``. The base is lower-cased."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"estimator name must be a non-empty string, got {name!r}")
    base, colon, arg = name.strip().partition(":")
    return base.strip().lower(), (arg.strip() if colon else None)


def merge(*groups: Iterable[EstimatorSpec] | Mapping[str, EstimatorSpec]) -> dict[str, EstimatorSpec]:
    """One dict ``{name: spec}`` from specs or dicts of specs; a name or alias used twice is a ValueError.

    >>> import discmi, genmi
    >>> registry = merge(discmi.ESTIMATORS, genmi.ESTIMATORS)
    """
    out: dict[str, EstimatorSpec] = {}
    owner: dict[str, str] = {}
    for group in groups:
        for spec in group.values() if isinstance(group, Mapping) else group:
            if not isinstance(spec, EstimatorSpec):
                raise ValueError(f"registries hold EstimatorSpec, got {type(spec).__name__}")
            for n in (spec.name, *spec.aliases):
                if n in owner:
                    raise ValueError(f"estimator name {n!r} is registered twice ({owner[n]!r} and {spec.name!r})")
                owner[n] = spec.name
            out[spec.name] = spec
    return out


def lookup(registry: Mapping[str, EstimatorSpec], base: str) -> EstimatorSpec | None:
    """The spec whose name or alias is ``base`` (any case), or ``None``."""
    base = base.strip().lower()
    if base in registry:
        return registry[base]
    return next((s for s in registry.values() if base in s.aliases), None)


# ---------------------------------------------------------------- a user's own object by name
USER_OBJECT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
"""The form of ``package.module:attr``."""


def _quote(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


class ObjectNotFound(ValueError):
    """The module or the attribute of a ``module:attr`` does not exist (a typo, not a failing import)."""


def load_object(spec: str, what: str) -> object:
    """``"pkg.mod:attr"`` -> ``pkg.mod.attr``, importable from the working directory too.

    A console script's ``sys.path`` lacks the working directory, where a user's module usually is, so it is
    searched too (for this import only); a module written since the last import is found. Every problem is
    a ``ValueError`` naming ``what`` (``"estimator"``, ``"task"``) and ``spec``: :class:`ObjectNotFound`
    when the module or the attribute does not exist, a plain ``ValueError`` when the module fails to import
    (its own error quoted).

    >>> load_object("math:pi", "constant")
    3.141592653589793
    """
    module_name, _, attr = spec.strip().partition(":")
    if not module_name or not attr:
        raise ValueError(f"{what} {spec!r}: give module:attr, e.g. mymodule:make")
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        # not found: the module itself or a package above it; anything else is a failing import inside it
        if err.name is not None and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise ObjectNotFound(f"{what} {spec!r}: module {module_name!r} was not found") from err
        raise ValueError(
            f"{what} {spec!r}: module {module_name!r} failed to import: {type(err).__name__}: {err}"
        ) from err
    except Exception as err:  # noqa: BLE001 - whatever the user's module raised, said as ours
        raise ValueError(
            f"{what} {spec!r}: module {module_name!r} failed to import: {type(err).__name__}: {err}"
        ) from err
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    if not hasattr(module, attr):
        raise ObjectNotFound(f"{what} {spec!r}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)
