"""The layers of matcalc (issue #14): the import graph of ``matcalc/``, function-local imports included, has
no cycle, and the low layers (the recursion limit, the nodes, the printers, the simplifier) import nothing
above them."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "matcalc"


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("matcalc",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(name: str, path: pathlib.Path, modules: dict) -> set[str]:
    """The matcalc modules that ``name`` imports anywhere in its file (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [base] + subs
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a path that ends where it starts), or None: depth-first, colouring nodes."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v):
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_the_import_graph_is_acyclic():
    graph = _graph()
    assert len(graph) > 30 and "matcalc.api" in graph
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_function_local_imports_count():
    graph = _graph()
    assert graph["matcalc.recursion"] == set()  # the lowest layer
    assert "matcalc.api" in graph["matcalc"]  # matcalc.derive is loaded lazily, inside __getattr__


@pytest.mark.parametrize("low,above", [
    ("matcalc.nodes", "matcalc.printing"),
    ("matcalc.printing", "matcalc.parser"),
    ("matcalc.simplify", "matcalc.parser"),
    ("matcalc.diff", "matcalc.verify"),
    ("matcalc.diff", "matcalc.codegen"),
    ("matcalc.verify", "matcalc.api"),
])
def test_low_layers_do_not_import_upward(low, above):
    graph = _graph()
    for name in graph:
        if name == low or name.startswith(low + "."):
            assert not any(t == above or t.startswith(above + ".") for t in graph[name] if t != "matcalc"), name


def test_the_public_import_paths_still_work():
    import matcalc
    import matcalc.api
    import matcalc.diff

    assert matcalc.derive is matcalc.api.derive is matcalc.diff.derive
    assert matcalc.Derivative is matcalc.diff.Derivative
    assert matcalc.check_claim is matcalc.api.check_claim
    d = matcalc.diff.derive("x' x", "x", layout="denominator")
    assert d.text() == "2 x" and d.check().ok
