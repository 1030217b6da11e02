"""Reads a source tree's imports with ``ast`` and checks the architecture rules.

Pure functions from a root directory, so the rules can be proved on small trees
written in ``tmp_path``. Every ``import`` node counts: those inside functions and
under ``if TYPE_CHECKING`` too.

A project module is a ``.py`` file of the root (``main.py`` is the module ``main``)
or under a top-level package (a folder with ``__init__.py``); ``tests/``,
``alembic/`` and hidden, build or virtualenv folders are not part of the project.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

EXCLUDED = frozenset({"tests", "alembic", "build", "dist", "node_modules", "__pycache__"})


@dataclass(frozen=True)
class Import:
    """One imported name: ``module`` (at ``path:line``) imports ``target``.

    ``target`` is the project module it resolves to, or ``None`` for a name from
    outside the project; ``name`` is the dotted name as written (``fastapi.FastAPI``).
    """

    module: str
    path: str
    line: int
    code: str
    name: str
    target: str | None

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.code}"


# ---------------------------------------------------------------- reading the tree


def _skipped(part: str) -> bool:
    return part in EXCLUDED or part.startswith(".") or part.endswith(".egg-info")


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every project module under ``root``."""
    modules: dict[str, Path] = {}
    for path in sorted(root.glob("*.py")):
        modules[path.stem] = path
    for top in sorted(p for p in root.iterdir() if p.is_dir() and not _skipped(p.name)):
        if not (top / "__init__.py").is_file():
            continue
        for path in sorted(top.rglob("*.py")):
            rel = path.relative_to(root)
            if any(_skipped(part) for part in rel.parts[:-1]):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(dotted: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of ``dotted`` that is a project module."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in modules:
            return name
    return None


def _base_of(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".") if package else []
    parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*parts, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, modules: Mapping[str, Path],
               root: Path | None = None) -> list[Import]:
    """Every name ``module`` imports, anywhere in its file."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    shown = str(path.relative_to(root)) if root else str(path)
    lines = source.splitlines()
    found: list[Import] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        code = " ".join(" ".join(lines[node.lineno - 1:node.end_lineno]).split())
        code = code if len(code) <= 100 else code[:99] + "…"
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, shown, node.lineno, code, alias.name,
                                    _resolve(alias.name, modules)))
            continue
        base = _base_of(module, path, node)
        for alias in node.names:
            name = ".".join(p for p in (base, alias.name) if p and p != "*")
            target = name if name in modules else _resolve(base, modules)
            found.append(Import(module, shown, node.lineno, code, name, target))
    return sorted(found, key=lambda i: (i.path, i.line, i.name))


_READ: dict[tuple[object, ...], tuple[Import, ...]] = {}


def all_imports(root: Path) -> tuple[Import, ...]:
    """Every import of every project module; read again only when a file changed."""
    modules = project_modules(root)
    key = (root.resolve(), *((m, p.stat().st_mtime_ns, p.stat().st_size)
                             for m, p in modules.items()))
    if key not in _READ:
        _READ[key] = tuple(i for m, p in modules.items()
                           for i in imports_of(m, p, modules, root))
    return _READ[key]


def package_of(module: str) -> str:
    """The top-level folder of a module (``main`` is its own node)."""
    return module.partition(".")[0]


# ---------------------------------------------------------------- graphs and cycles


def module_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for i in imports:
        graph.setdefault(i.module, set())
        if i.target is not None and i.target != i.module:
            graph[i.module].add(i.target)
            graph.setdefault(i.target, set())
    return graph


def package_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for i in imports:
        source = package_of(i.module)
        graph.setdefault(source, set())
        if i.target is not None and package_of(i.target) != source:
            graph[source].add(package_of(i.target))
    return graph


def _components(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    members.append(top)
                    if top == node:
                        break
                if len(members) > 1:
                    found.append(sorted(members))
    return sorted(found)


def _cycle_through(graph: Mapping[str, set[str]], members: list[str]) -> list[str]:
    """A shortest cycle from the first member back to itself, inside the component."""
    inside = set(members)
    start = members[0]
    came: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & inside):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came[path[-1]])
                return [*reversed(path), start]
            if child not in came:
                came[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {members}")  # pragma: no cover


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle (first node repeated at the end) per strongly connected component."""
    return [_cycle_through(graph, members) for members in _components(graph)]


def describe_cycle(cycle: list[str], imports: Iterable[Import], *, packages: bool = False
                   ) -> str:
    """``a -> b -> a`` and, for each step, the first import line that makes it."""
    by_edge: dict[tuple[str, str], Import] = {}
    for i in imports:
        if i.target is None:
            continue
        edge = ((package_of(i.module), package_of(i.target)) if packages
                else (i.module, i.target))
        by_edge.setdefault(edge, i)
    lines = [" -> ".join(cycle)]
    for a, b in pairwise(cycle):
        lines.append(f"    {a} -> {b}: {by_edge[(a, b)].where()}")
    return "\n".join(lines)


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """Modules of package ``source`` may not import modules under ``forbidden``.

    A forbidden entry is a package or module prefix (``routes`` covers
    ``routes.lanes``); ``allow_only`` instead forbids every project package but
    those it names.
    """

    source: str
    forbidden: tuple[str, ...] = ()
    allow_only: tuple[str, ...] | None = None

    def breaks(self, i: Import) -> bool:
        if i.target is None or not _under(i.module, self.source):
            return False
        if self.allow_only is not None:
            return not any(_under(i.target, ok) for ok in self.allow_only)
        return any(_under(i.target, bad) for bad in self.forbidden)

    def __str__(self) -> str:
        if self.allow_only is not None:
            return f"{self.source}/ may import only {', '.join(self.allow_only)}"
        return f"{self.source}/ may not import {', '.join(self.forbidden)}"


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


RULES = (
    Rule("contracts", allow_only=("contracts",)),
    Rule("adapters", forbidden=("routes", "api", "simulators")),
    Rule("broker", forbidden=("routes",)),
    Rule("routes", forbidden=("broker", "api")),
    Rule("kernel", forbidden=("broker", "routes", "api", "adapters", "bootstrap")),
)


def rule_violations(imports: Iterable[Import], rule: Rule) -> list[Import]:
    return [i for i in imports if rule.breaks(i)]


SIMULATOR_IMPORTS = ("simulators", "pyftpdlib", "uvicorn", "fastapi.FastAPI")


def _names_fastapi_app(path: Path) -> list[int]:
    """Lines that use ``fastapi.FastAPI`` through ``import fastapi`` (attribute access)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
               for a in n.names if a.name == "fastapi"}
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and n.attr == "FastAPI"
            and isinstance(n.value, ast.Name) and n.value.id in aliases]


def simulator_findings(root: Path, package: str = "adapters") -> list[str]:
    """Signs of a partner simulator under ``package``: its imports and file names."""
    modules = project_modules(root)
    found: list[str] = []
    for module, path in modules.items():
        if not _under(module, package):
            continue
        rel = path.relative_to(root)
        if any("sim" in part.lower() for part in rel.parts[1:]):
            found.append(f"{rel}: a file named like a simulator")
        for i in (i for i in all_imports(root) if i.module == module):
            app = i.name.startswith("fastapi.") and i.name.endswith(".FastAPI")
            if app or any(_under(i.name, bad) or _under(i.target or "", bad)
                          for bad in SIMULATOR_IMPORTS):
                found.append(f"{i.where()} (imports {i.target or i.name})")
        found += [f"{rel}:{line}: builds a fastapi.FastAPI app"
                  for line in _names_fastapi_app(path)]
    return found


# ---------------------------------------------------------------- checks: readable problems


def module_cycle_problems(root: Path) -> list[str]:
    imports = all_imports(root)
    return [f"import cycle between modules: {describe_cycle(c, imports)}"
            for c in cycles(module_graph(imports))]


def package_cycle_problems(root: Path) -> list[str]:
    imports = all_imports(root)
    return [f"import cycle between folders: {describe_cycle(c, imports, packages=True)}"
            for c in cycles(package_graph(imports))]


def rule_problems(root: Path, rule: Rule) -> list[str]:
    return [f"{rule}: {i.where()} (imports {i.target})"
            for i in rule_violations(all_imports(root), rule)]


def simulator_problems(root: Path) -> list[str]:
    return [f"a simulator under adapters/: {finding}" for finding in simulator_findings(root)]


# ---------------------------------------------------------------- tests mirror the layout


def misplaced_tests(root: Path, *, system_suites: frozenset[str] = frozenset(),
                    cross_cutting: frozenset[str] = frozenset()) -> list[str]:
    """Test files of ``tests/unit`` and ``tests/integration`` outside a package's mirror.

    A test file belongs in ``tests/<kind>/<pkg>/<sub>/...`` where ``<pkg>/<sub>`` is a
    project package folder; ``system_suites`` are folders of ``tests/<kind>`` that test
    the whole hub, ``cross_cutting`` files may sit at ``tests/<kind>`` itself.
    """
    found: list[str] = []
    for kind in ("unit", "integration"):
        base = root / "tests" / kind
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("test_*.py")):
            rel = path.relative_to(base)
            folder = rel.parent
            shown = path.relative_to(root)
            if folder == Path("."):
                if rel.name not in cross_cutting:
                    found.append(f"{shown}: at the top of tests/{kind}, not under a package")
            elif folder.parts[0] in system_suites:
                continue
            elif not (root / folder / "__init__.py").is_file() or _skipped(folder.parts[0]):
                found.append(f"{shown}: {folder}/ is not a project package")
        for folder in sorted(p for p in base.rglob("*") if p.is_dir()
                             and p.name != "__pycache__"):
            if not (folder / "__init__.py").is_file():
                found.append(f"{folder.relative_to(root)}/ has no __init__.py")
    return found
