"""The package's layers, checked from its source: no module imports one above it, and
no import circle (a function-level or ``TYPE_CHECKING`` import counts like any other).

A new module gets a layer here, deliberately: the test fails for one it does not know.
"""

import ast
from pathlib import Path

import pytest

import paycancel_cli

PACKAGE = Path(paycancel_cli.__file__).parent

# Top to bottom; a module may import its own layer and the ones below.  A name ending
# in ".*" stands for every module of that package.
LAYERS: list[tuple[str, set[str]]] = [
    ("entry", {"__main__", "cli"}),
    ("commands", {"commands", "commands.*"}),
    (
        "runs",
        {
            "runs",
            "runs.*",
            "core",
            "plans",
            "tonight",
            "unfinished",
            "monitoring",
            "render",
        },
    ),
    (
        "services",
        {
            "engine",
            "journal",
            "locks",
            "csvinput",
            "session",
            "preflight",
            "audit",
            "completion",
            "sandboxconfig",
            "sandbox",
            "sandbox.*",
        },
    ),
    ("adapters", {"providers", "providers.*", "httpclient", "config", "secretsources", "breaker"}),
    (
        "base",
        {
            "",
            "models",
            "errors",
            "redact",
            "pipes",
            "prompt",
            "idshape",
            "idsource",
            "stamped",
            "retries",
            "refusals",
        },
    ),
]


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name below the package ("" for the
    package itself)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, wherever in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
                module = "paycancel_cli" + ("." + module if module else "")
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        for target in targets:
            if target == "paycancel_cli" or target.startswith("paycancel_cli."):
                inner = target.removeprefix("paycancel_cli").removeprefix(".")
                if inner in known and inner != name:
                    found.add(inner)
    return found


def layer_of(name: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if name == member or (member.endswith(".*") and name.startswith(member[:-1])):
                return index
    raise AssertionError(f"{name or 'paycancel_cli'} has no layer in tests/test_layers.py")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def test_every_module_has_a_layer(graph: dict[str, set[str]]) -> None:
    for name in graph:
        layer_of(name)


def test_no_module_imports_a_layer_above_it(graph: dict[str, set[str]]) -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of(target) < layer_of(name)
    ]
    assert upward == []


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle(graph: dict[str, set[str]]) -> None:
    assert circles(graph) == []


def test_the_walk_sees_a_circle_and_an_upward_import() -> None:
    """The checks above can fail: a made-up graph with a circle and an upward import."""
    made_up = {"bulk": {"plans"}, "plans": {"bulk"}, "engine": {"cli"}, "cli": set()}
    assert circles(made_up) == [["bulk", "plans"]]
    assert layer_of("engine") > layer_of("cli")
    assert imports("commands.config", PACKAGE / "commands" / "config.py", set(modules())) >= {
        "commands.common"
    }
