"""The package layout is the architecture: no import cycles, no borrowed private names, nothing imports upward.

Walks the AST of every module of the four packages (imports inside functions included; those under
``if TYPE_CHECKING:`` are annotations that never run, and are left out) and fails naming the offending line:

* **cycles** — module A imports B and B (through any chain) imports A; a package's ``__init__`` counts as a
  module that imports what it re-exports, and the implicit import of a parent package by its submodules
  is not an edge (Python runs ``a/__init__`` before ``a/b`` without ``a/b`` naming it);
* **private names** — ``from M import _name`` where ``M`` is another module (a name meant for its own module
  only; give it a public name, or move it where it is used);
* **upward imports** — a module importing a room above its own, by the order below.

The checker is also run on a small planted tree that breaks each rule, so that a checker that finds nothing
cannot pass unnoticed.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("micore", "discmi", "genmi", "selfconsistency")

# Rooms, bottom to top: a module may import its own room and the rooms below it, never one above. Rooms
# on one level (a tuple) do not import each other. The first matching prefix names a module's room.
FLOORS = [
    # micore: the leaves, the tasks, training, the interface (whose fit trains), what builds on both
    ("micore.compat", "micore.validation", "micore.device", "micore.estimate", "micore.registry"),
    ("micore.tasks",),
    ("micore.training",),
    ("micore.estimator",),
    ("micore.ensemble", "micore.finite"),
    ("micore",),  # the package's __init__ and the deprecation shims at the old paths
    # the two families beside each other
    ("discmi", "genmi"),
    # selfconsistency: running things knows nothing about MI; the registry; the comparisons; the command
    ("selfconsistency.execution",),
    ("selfconsistency.registry",),
    ("selfconsistency.groundtruth", "selfconsistency.images", "selfconsistency.userdata", "selfconsistency.testing"),
    ("selfconsistency.cli",),
    ("selfconsistency",),
]


def room_of(module: str) -> tuple[int, str] | None:
    """``(floor, room)`` of a module, the longest matching room prefix; ``None`` outside the packages."""
    best = None
    for level, rooms in enumerate(FLOORS):
        for room in rooms:
            if (module == room or module.startswith(room + ".")) and (best is None or len(room) > len(best[1])):
                best = (level, room)
    return best


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    names: tuple[str, ...]  # the names taken from it (empty for `import x`)
    where: str  # path:line


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path, packages) -> list[Import]:
    """Every import of ``path`` that lands in ``packages``, at any depth of the module's AST."""
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    modules_here = {module_name(p, root) for pkg in packages for p in (root / pkg).rglob("*.py")}
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in packages:
                    found.append(Import(module, alias.name, (), where))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] not in packages:
                continue
            names = tuple(a.name for a in node.names)
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules_here]
            if len(submodules) < len(names):  # `from pkg import sub` depends on sub, not on pkg's __init__
                found.append(Import(module, target, names, where))
            found += [Import(module, sub, (), where) for sub in submodules]
    return found


def import_graph(root: Path, packages=PACKAGES) -> list[Import]:
    return [
        imp
        for pkg in packages
        for path in sorted((root / pkg).rglob("*.py"))
        for imp in imports_of(path, root, packages)
    ]


def private_imports(imports: list[Import]) -> list[str]:
    return [
        f"{imp.where}: {imp.source} imports {name} from {imp.target}"
        for imp in imports
        for name in imp.names
        if name.startswith("_") and not name.startswith("__") and imp.target != imp.source
    ]


def upward_imports(imports: list[Import]) -> list[str]:
    out = []
    for imp in imports:
        src, dst = room_of(imp.source), room_of(imp.target)
        if src is None or dst is None or src[1] == dst[1] or imp.target.startswith(imp.source + "."):
            continue  # its own room, or a package importing its own submodules
        if dst[0] > src[0] or (dst[0] == src[0] and dst[1] != src[1]):
            out.append(f"{imp.where}: {imp.source} (room {src[1]}) imports {imp.target} (room {dst[1]})")
    return out


def cycles(imports: list[Import]) -> list[str]:
    """Each import cycle (a strongly connected component of two or more modules, or a self-import), named by
    the import lines that close it."""
    edges: dict[str, dict[str, str]] = {}
    for imp in imports:
        if imp.target != imp.source:
            edges.setdefault(imp.source, {}).setdefault(imp.target, imp.where)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                members = set(component)
                lines = [
                    f"{edges[a][b]} ({a} -> {b})" for a in sorted(members) for b in edges.get(a, {}) if b in members
                ]
                found.append("cycle through " + ", ".join(sorted(members)) + ": " + "; ".join(lines))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    return import_graph(ROOT)


def test_there_are_no_import_cycles(graph):
    assert cycles(graph) == []


def test_no_module_borrows_another_modules_private_names(graph):
    assert private_imports(graph) == []


def test_nothing_imports_upward(graph):
    assert upward_imports(graph) == []


def test_every_module_has_a_room():
    missing = [
        module_name(p, ROOT)
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        if room_of(module_name(p, ROOT)) is None
    ]
    assert missing == []


def test_the_checker_finds_what_it_looks_for(tmp_path):
    """A planted tree breaking each rule once: the checker must name every offence, with its line."""
    files = {
        "micore/__init__.py": "",
        "micore/validation.py": "from .training import loop\n",  # upward: a leaf importing training
        "micore/training/__init__.py": "",
        "micore/training/loop.py": "def f():\n    from micore.validation import _secret\n",  # private, in a function
        "discmi/__init__.py": "from genmi import thing\n",  # beside: discmi importing genmi
        "genmi/__init__.py": "",
        "selfconsistency/__init__.py": "",
        "selfconsistency/execution/__init__.py": "",
        "selfconsistency/execution/runner.py": "from .executors import run\n",
        "selfconsistency/execution/executors.py": "def g():\n    from .runner import execute\n",  # a cycle
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    planted = import_graph(tmp_path)
    assert private_imports(planted) == [
        "micore/training/loop.py:2: micore.training.loop imports _secret from micore.validation"
    ]
    upward = upward_imports(planted)
    assert any(u.startswith("micore/validation.py:1: micore.validation") for u in upward), upward
    assert any(u.startswith("discmi/__init__.py:1: discmi (room discmi) imports genmi") for u in upward), upward
    found = cycles(planted)  # micore.validation <-> micore.training.loop, and runner <-> executors
    assert len(found) == 2 and "micore.training.loop, micore.validation" in found[0], found
    assert "selfconsistency.execution.executors, selfconsistency.execution.runner" in found[1]
    assert (
        "selfconsistency/execution/executors.py:2" in found[1] and "selfconsistency/execution/runner.py:1" in found[1]
    )
