"""The estimator registry: every estimator once, every name builds, one canonical name per configuration,
and every bad name, arg, option or user module says what is wrong."""

import inspect
import math
import os
import sys

import pytest

import discmi
import genmi
from discmi.critics import ConvCritic, JointCritic
from micore import MIEstimator
from micore.registry import EstimatorSpec, merge, no_param, number_param
from selfconsistency import registry
from selfconsistency.registry import ESTIMATORS, canonical_name, examples, make_factory, spec, title

VEC, IMG = (5,), (1, 8, 8)

# The classes of the estimators registered today; a new name only needs its class in its family's package.
EXPECTED = {
    "nwj": discmi.NWJ,
    "tuba": discmi.TUBA,
    "dv": discmi.DV,
    "mine": discmi.MINE,
    "cpc": discmi.InfoNCE,
    "js": discmi.JS,
    "interpolated": discmi.Interpolated,
    "smile": discmi.SMILE,
    "remine": discmi.ReMINE,
    "remine-j": discmi.ReMINE,
    "gm-flow": genmi.FlowMI,
    "gm-vae": genmi.VAEMI,
    "ba": genmi.BarberAgakov,
}
PACKAGE = {"discriminative": "discmi", "generative": "genmi"}


def buildable_names() -> list[str]:
    """Every example and every known name with its default arg (names that cannot be built left out)."""
    names = set(examples()) | {s.canonical() for s in ESTIMATORS.values() if s.unavailable is None}
    return sorted(names)


def config(est) -> tuple:
    """What makes two estimators one configuration: the class and its settings."""
    keys = ("tau", "alpha", "lam", "target", "estimate_mode", "k", "entropy_x", "layers", "hidden")
    return (type(est),) + tuple(getattr(est, k, None) for k in keys)


def test_every_estimator_is_registered_exactly_once():
    names = [n for s in ESTIMATORS.values() for n in (s.name, *s.aliases)]
    assert len(names) == len(set(names))
    known = registry.known_names()
    assert known == list(ESTIMATORS) and len(set(known)) == len(known)
    assert set(known) == set(discmi.ESTIMATORS) | set(genmi.ESTIMATORS)
    assert not set(discmi.ESTIMATORS) & set(genmi.ESTIMATORS)
    assert {s.family for s in discmi.ESTIMATORS.values()} == {"discriminative"}
    assert {s.family for s in genmi.ESTIMATORS.values()} == {"generative"}
    assert {"infonce", "cpc", "smile"} <= set(registry.DISCRIMINATIVE) and "gm-flow" not in registry.DISCRIMINATIVE


def test_every_exported_estimator_class_is_reachable_by_a_name():
    built = {type(make_factory(n)(VEC, VEC)) for n in buildable_names()}
    # CriticEstimator is the discriminative base class, not an estimator of its own
    exported = {
        obj
        for n in discmi.__all__
        if inspect.isclass(obj := getattr(discmi, n))
        and issubclass(obj, MIEstimator)
        and obj is not discmi.CriticEstimator
    }
    assert exported and exported <= built, exported - built
    assert {genmi.FlowMI, genmi.VAEMI, genmi.BarberAgakov} <= built


@pytest.mark.parametrize("name", buildable_names())
def test_every_name_builds_for_vectors_and_images(name):
    s = spec(name)
    est = make_factory(name)(VEC, VEC)
    assert isinstance(est, MIEstimator) and type(est).__module__.split(".")[0] == PACKAGE[s.family]
    assert isinstance(est, EXPECTED.get(s.name, MIEstimator))
    if s.family == "discriminative":
        assert isinstance(est.critic, JointCritic)  # the vectors' default critic
    base, _, arg = canonical_name(name).partition(":")
    if s.supports("images", arg or None):
        img = make_factory(name, domain="images")(IMG, IMG)
        assert type(img) is type(est) and config(img)[1:] == config(est)[1:]
        if s.family == "discriminative":
            assert isinstance(img.critic, ConvCritic)
    else:
        with pytest.raises(ValueError, match=f"estimator '{s.name}'"):
            make_factory(name, domain="images")


def test_names_build_the_configuration_they_say():
    assert make_factory("smile:inf")(VEC, VEC).tau == math.inf
    assert make_factory("smile")(VEC, VEC).tau == 5.0
    assert make_factory("remine-j:0.5")(VEC, VEC).estimate_mode == "joint"
    assert make_factory("remine-j:0.5")(VEC, VEC).lam == 0.5
    assert make_factory("remine")(VEC, VEC).estimate_mode == "dv"
    assert make_factory("interpolated")(VEC, VEC).alpha == 0.01
    assert make_factory("gm-vae:4", domain="images")(IMG, IMG).k == 4
    assert isinstance(make_factory("cpc", critic="separable")(VEC, VEC).critic, discmi.SeparableCritic)
    mine = JointCritic(5, 5, hidden=(8,))
    assert make_factory("nwj", critic=mine)(VEC, VEC).critic is mine


SPELLINGS = [
    ["smile", "smile:5", "smile:5.0", "SMILE:05", " smile : 5 ", "smile:5e0"],
    ["smile:inf", "smile:INF", "smile:∞", "smile:infty", "Smile:Inf"],
    ["smile:1", "smile:1.0"],
    ["smile:5.000001"],
    ["smile:0.5", "smile:.5"],
    ["cpc", "infonce", "INFONCE", "CPC"],
    ["nwj"],
    ["mine"],
    ["js"],
    ["dv"],
    ["tuba"],
    ["interpolated", "interpolated:0.01", "interpolated:1e-2"],
    ["interpolated:0.5"],
    ["interpolated:0"],
    ["remine", "remine:0.1", "remine:1e-1"],
    ["remine:0.2"],
    ["remine-j", "remine-j:0.10"],
    ["remine-j:2"],
    ["gm-vae", "gm-vae:1", "gm-vae:01"],
    ["gm-vae:16", "GM-VAE:16"],
    ["gm-flow"],
    ["ba"],
    ["ba:12.5", "ba:12.50", "ba:1.25e1"],
    ["ba:-3"],
    ["ba:0", "ba:-0"],
]


def test_canonical_names_are_one_per_configuration():
    canon = [{canonical_name(n) for n in group} for group in SPELLINGS]
    assert all(len(c) == 1 for c in canon), canon  # spellings of one configuration: one name
    flat = [c.pop() for c in canon]
    assert len(flat) == len(set(flat)), flat  # different configurations: different names
    assert all(canonical_name(c) == c for c in flat)  # canonical names are fixed points
    assert canonical_name("smile:5.0") == "smile:5" and canonical_name("INFONCE") == "cpc"
    assert canonical_name("gm-vae:1") == "gm-vae" and canonical_name("my_pkg.mod:make") == "my_pkg.mod:make"
    # and the name decides the estimator: one configuration per name, one name per configuration
    configs = {}
    for group in SPELLINGS:
        built = {config(make_factory(n)(VEC, VEC)) for n in group}
        assert len(built) == 1, (group, built)
        configs[canonical_name(group[0])] = built.pop()
    assert len(set(configs.values())) == len(configs), configs


def test_titles_come_from_the_registry():
    assert title("smile:5.0") == "SMILE (τ = 5)" and title("smile") == "SMILE (τ = 5)"
    assert title("smile:inf") == "SMILE (τ = ∞)" and title("infonce") == "CPC"
    assert title("gm-flow") == "GM (flow)" and title("gm-vae") == "GM (VAE)"
    assert title("gm-vae:16") == "GM (VAE, K = 16)"
    assert title("remine-j") == "ReMINE-J" and title("remine:0.5") == "ReMINE (λ = 0.5)"
    # a user factory or a label from a report is drawn as it is, never imported or refused
    for label in ("no_such_pkg.mod:make", "SMILE(tau=5.0)", "smile:abc", "my estimator"):
        assert title(label) == label
    assert all(isinstance(title(n), str) and title(n) for n in buildable_names())


def test_families_examples_and_the_listing():
    assert registry.family("smile:5") == "discriminative" and registry.family("GM-VAE:4") == "generative"
    assert registry.family("pkg.mod:make") is None and spec("pkg.mod:make") is None
    assert spec("infonce") is ESTIMATORS["cpc"]
    assert examples() == examples("discriminative") + examples("generative")
    assert {"cpc", "smile:5", "smile:inf", "remine", "remine-j"} <= set(examples("discriminative"))
    with pytest.raises(ValueError, match="family must be one of"):
        examples("bayesian")
    text = registry.describe()
    assert all(s.usage in text for s in ESTIMATORS.values()) and "package.module:factory" in text


def test_unknown_names_list_the_known_ones():
    for name in ("nosuch", "smiel:5", "no_such_pkg_xyz.mod:make"):
        with pytest.raises(ValueError, match="unknown estimator") as err:
            make_factory(name)
        assert all(n in str(err.value) for n in registry.known_names())
    with pytest.raises(ValueError, match="unknown estimator"):
        canonical_name("nosuch:5")  # not a module:attribute either
    with pytest.raises(ValueError, match="non-empty string"):
        make_factory("")


@pytest.mark.parametrize(
    "name, message",
    [
        ("smile:abc", "estimator 'smile': the parameter after ':' is tau"),
        ("smile:-1", "estimator 'smile': tau must be > 0"),
        ("smile:nan", "estimator 'smile'"),
        ("gm-vae:0", "estimator 'gm-vae': K must be >= 1"),
        ("gm-vae:2.5", "estimator 'gm-vae'.*importance samples"),
        ("interpolated:1.5", "estimator 'interpolated': alpha must be >= 0 and <= 1"),
        ("remine:0", "estimator 'remine': lam must be > 0"),
        ("cpc:3", "estimator 'cpc': takes no parameter"),
        ("ba:inf", "estimator 'ba'.*h\\(X\\) in nats"),
    ],
)
def test_bad_args_name_the_estimator(name, message):
    with pytest.raises(ValueError, match=message):
        make_factory(name)
    with pytest.raises(ValueError, match=message):
        canonical_name(name)


def test_options_and_domains_are_strict():
    with pytest.raises(ValueError, match="does not take option.*bogus"):
        ESTIMATORS["smile"].build("5", VEC, VEC, bogus=1)
    with pytest.raises(ValueError, match="does not take option.*critic"):
        ESTIMATORS["gm-flow"].factory(critic="joint")
    for critic in ("joint", JointCritic(5, 5)):
        with pytest.raises(ValueError, match="critic applies to discriminative estimators"):
            make_factory("gm-flow", critic=critic)
    with pytest.raises(ValueError, match="domain must be one of"):
        make_factory("cpc", domain="pixels")
    with pytest.raises(ValueError, match="'ba' needs its parameter on images"):
        make_factory("ba", domain="images")
    with pytest.raises(ValueError, match="'loo' cannot be built.*known encoder"):
        make_factory("loo")
    assert canonical_name("loo") == "loo"  # a valid name, only not buildable from shapes


def _write_module(tmp_path, name, body):
    (tmp_path / f"{name}.py").write_text(body)


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """tmp_path as the working directory, and a sys.path without it (as a console script has)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path), os.getcwd())])
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("registry_user_")]:
        del sys.modules[mod]


def test_a_user_factory_in_the_working_directory(user_dir):
    _write_module(
        user_dir,
        "registry_user_ok",
        "from discmi import NWJ\ndef make(x_shape, y_shape):\n    return NWJ(x_shape, y_shape)\nNOT_CALLABLE = 3\n",
    )
    make = make_factory("registry_user_ok:make")
    assert isinstance(make(VEC, VEC), discmi.NWJ)
    assert str(user_dir) not in sys.path  # the working directory was added for the import only
    assert canonical_name("registry_user_ok:make") == "registry_user_ok:make"
    for critic in ("joint", JointCritic(5, 5)):  # a user's factory builds its own model
        with pytest.raises(ValueError, match="critic applies to discriminative"):
            make_factory("registry_user_ok:make", critic=critic)
    with pytest.raises(ValueError, match="NOT_CALLABLE is a int, not a callable"):
        make_factory("registry_user_ok:NOT_CALLABLE")
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        make_factory("registry_user_ok:missing")


def test_a_user_module_that_fails_to_import_is_not_called_unknown(user_dir):
    _write_module(user_dir, "registry_user_boom", "raise RuntimeError('kaboom')\n")
    _write_module(user_dir, "registry_user_dep", "import registry_user_no_such_dependency\n")
    with pytest.raises(ValueError, match="module 'registry_user_boom' failed to import: RuntimeError: kaboom"):
        make_factory("registry_user_boom:make")
    with pytest.raises(ValueError, match="failed to import: ModuleNotFoundError.*registry_user_no_such_dependency"):
        make_factory("registry_user_dep:make")
    with pytest.raises(ValueError, match="unknown estimator.*'registry_user_absent' was not found"):
        make_factory("registry_user_absent:make")


def test_specs_and_merge_refuse_inconsistencies():
    def build(arg, x_shape, y_shape):
        return discmi.NWJ(x_shape, y_shape)

    one = EstimatorSpec("one", "discriminative", "x", builder=build, aliases=("uno",))
    with pytest.raises(ValueError, match="'uno' is registered twice"):
        merge([one], [EstimatorSpec("uno", "generative", "y", builder=build)])
    with pytest.raises(ValueError, match="'smile' is registered twice"):
        merge(ESTIMATORS, [EstimatorSpec("smile", "discriminative", "again", builder=build)])
    with pytest.raises(ValueError, match="not a canonical name"):
        EstimatorSpec(
            "two",
            "generative",
            "x",
            builder=build,
            param="k, a number",
            parse=number_param("k", "a number", default=1.0),
            examples=("two:1.0",),
        )
    with pytest.raises(ValueError, match="must match"):
        EstimatorSpec("Two:1", "generative", "x", builder=build)
    with pytest.raises(ValueError, match="family must be one of"):
        EstimatorSpec("two", "bayesian", "x", builder=build)
    with pytest.raises(ValueError, match="outside options"):
        EstimatorSpec("two", "generative", "x", builder=build, defaults={"vectors": {"critic": "joint"}})
    with pytest.raises(ValueError, match="supports neither"):
        EstimatorSpec("two", "generative", "x", builder=build, vectors=False)
    with pytest.raises(ValueError, match="no parser"):
        EstimatorSpec("two", "generative", "x", builder=build, param="k, a number", parse=no_param)
    with pytest.raises(TypeError):
        ESTIMATORS["smile"].defaults["vectors"]["critic"] = "separable"  # shared specs are read-only


def test_the_merged_registry_holds_each_familys_own_specs():
    assert registry.ESTIMATORS["gm-flow"] is genmi.ESTIMATORS["gm-flow"]
