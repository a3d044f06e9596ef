"""The package's layers (STYLE.md "Layers and boundaries", issue 10), checked on the source.

Every import of a package module is counted, module-level and function-level alike (a
function-level import hides a cycle instead of removing it); only imports under
``if TYPE_CHECKING:`` are left out, since they never run. The checks:

- no import cycle among the package's modules;
- imports go downward only: public modules → ``_celery`` → ``_engine`` → ``_store`` →
  vocabulary, keys and types;
- no function-level import of a package module; a function-level import of another package
  must be an optional dependency, with a comment saying why it is lazy;
- only ``_store/redis*`` imports ``redis``; nothing below ``_celery`` imports Celery or kombu.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "celery_trigger"
ROOT = "celery_trigger"

#: Modules below the store: vocabulary, key names and the public types everything uses.
FOUNDATION = {
    "_vocab",
    "_keys",
    "errors",
    "_serialization",
    "options",
    "status",
    "result",
    "context",
    "_config",
    "_metadata_ops",
}
#: Layer rank of each package area; a module may import only modules of its rank or lower.
RANKS = {"foundation": 0, "_store": 1, "_engine": 2, "_celery": 3, "public": 4}
#: Third-party packages a module may import inside a function (optional dependencies).
OPTIONAL = {"opentelemetry", "uvicorn", "httpx", "django", "tqdm"}


@dataclass
class ModuleImports:
    name: str
    top: set[str] = field(default_factory=set)
    lazy: set[str] = field(default_factory=set)
    #: (imported third-party module, line, has a comment) for function-level imports
    lazy_external: list[tuple[str, int, bool]] = field(default_factory=list)
    external: set[str] = field(default_factory=set)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> list[str]:
    """Absolute names a statement imports (a ``from pkg import sub`` names ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join(parts) + (f".{node.module}" if node.module else "")
    # ``from pkg import sub`` depends on ``pkg.sub``; on ``pkg`` itself only for a name
    # defined there (``_scan`` keeps the names that are modules).
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _scan(module: str, path: Path, known: set[str]) -> ModuleImports:
    tree = ast.parse(path.read_text("utf-8"))
    lines = path.read_text("utf-8").splitlines()
    out = ModuleImports(module)

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = _targets(node, module, path)
            if isinstance(node, ast.ImportFrom) and all(n in known for n in names[:-1]):
                names = names[:-1]  # every name imported is a submodule: not the package
            for name in names:
                if name.split(".")[0] == ROOT:
                    if name in known:
                        (out.lazy if in_function else out.top).add(name)
                elif not (isinstance(node, ast.ImportFrom) and node.level):
                    out.external.add(name.split(".")[0])
                    if in_function:
                        line = node.lineno
                        text = lines[line - 1] + (lines[line - 2] if line > 1 else "")
                        out.lazy_external.append((name.split(".")[0], line, "#" in text))
            return
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    out.top.discard(module)
    out.lazy.discard(module)
    return out


def _graph() -> dict[str, ModuleImports]:
    modules = _modules()
    known = set(modules)
    return {name: _scan(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "public"
    if parts[1] in ("_store", "_engine", "_celery"):
        return parts[1]
    return "foundation" if parts[1] in FOUNDATION else "public"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
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

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_the_package_has_no_import_cycle() -> None:
    # Given every import of a package module, module-level and function-level alike
    graph = _graph()
    edges = {name: mods.top | mods.lazy for name, mods in graph.items()}
    # Then no group of modules imports itself round
    assert _cycles(edges) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    # A check that cannot fail is no check: a made-up cycle is found.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_imports_only_go_down_the_layers() -> None:
    # Given each module's layer (public → _celery → _engine → _store → foundation)
    upward = []
    for name, mods in _graph().items():
        for target in mods.top | mods.lazy:
            if RANKS[_layer(target)] > RANKS[_layer(name)]:
                upward.append(f"{name} -> {target}")
    # Then none imports a module of a higher layer
    assert upward == []


def test_no_package_module_is_imported_inside_a_function() -> None:
    lazy = sorted(f"{name} -> {t}" for name, mods in _graph().items() for t in mods.lazy)
    assert lazy == []


def test_lazy_imports_are_optional_dependencies_with_a_reason() -> None:
    bad = [
        f"{name}:{line} imports {dep}"
        for name, mods in _graph().items()
        for dep, line, commented in mods.lazy_external
        if dep not in OPTIONAL or not commented
    ]
    assert bad == []


def test_only_the_redis_store_imports_redis_and_only_the_celery_layer_celery() -> None:
    graph = _graph()
    redis_users = sorted(n for n, m in graph.items() if "redis" in m.external)
    assert all(n.startswith(f"{ROOT}._store.redis") for n in redis_users), redis_users
    below_celery = [n for n in graph if RANKS[_layer(n)] < RANKS["_celery"]]
    celery_users = sorted(
        n for n in below_celery if graph[n].external & {"celery", "kombu", "billiard"}
    )
    assert celery_users == []
