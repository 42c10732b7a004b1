"""The shape of bot/, read from its source: no import cycles, no module importing another's private names, no
file over 400 lines, and the platform-free core without torch.

Imports under ``if TYPE_CHECKING:`` count (a loop of type hints is still a loop in the design); an import
inside a function does not: that is how a backend is chosen at run time (psycopg only with PostgreSQL)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def modules(package: Path) -> dict[str, Path]:
    """Every module under ``package`` by dotted name (``bot.web.adapter``; a package by its own name)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def module_level(node: ast.AST) -> list[ast.AST]:
    """The statements run when the module is imported: its body, into if/try/with/class blocks, not functions."""
    found = []
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            found += [child, *module_level(child)]
    return found


def imported(name: str, path: Path, known: set[str]) -> list[tuple[str, list[str]]]:
    """(module, names taken from it) for every import in the file, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in module_level(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [alias.name for alias in node.names]
            out.append((module, names))
            out += [(f"{module}.{n}", []) for n in names if f"{module}.{n}" in known]  # from bot import pictures
    return out


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (a package's own __init__ only when named)."""
    known = modules(package)
    graph = {}
    for name, path in known.items():
        graph[name] = {m for m, names in imported(name, path, set(known))
                       if m in known and m != name and not (names and all(f"{m}.{n}" in known for n in names))}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def private_imports(package: Path) -> list[str]:
    """``module: from x import _name`` for every private name a module takes from another."""
    known = modules(package)
    return [f"{name}: from {module} import {n}" for name, path in known.items()
            for module, names in imported(name, path, set(known)) for n in names
            if n.startswith("_") and not n.startswith("__")]


def long_files(package: Path) -> list[str]:
    return [f"{p.relative_to(package.parent)}: {n} lines" for p in sorted(package.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES]


def test_bot_has_no_import_cycles():
    assert cycles(import_graph(ROOT / "bot")) == []


def test_no_module_in_bot_imports_private_names():
    assert private_imports(ROOT / "bot") == []


def test_no_file_in_bot_is_over_400_lines():
    assert long_files(ROOT / "bot") == []


def test_the_checks_see_a_cycle_and_a_private_import(tmp_path):
    """The checks above catch what they look for: a cycle through a TYPE_CHECKING import, a private name."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import helper\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nfrom pkg import c\nif TYPE_CHECKING:\n"
                              "    from pkg.a import A\ndef helper(): pass\n")
    (pkg / "c.py").write_text("from .b import _hidden\ndef later():\n    from pkg import d\n")
    (pkg / "d.py").write_text("from pkg.c import later\n")  # d -> c at import, c -> d only when called
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert private_imports(pkg) == ["pkg.c: from pkg.b import _hidden"]


def test_the_core_and_the_registry_import_no_torch():
    """The platform-free core, the registry, the text parser and the picture rendering run without torch: the
    tensors stay behind the generator service, which takes typed requests and answers with pictures."""
    code = ("import sys; import bot.core, bot.registry, bot.command_words, bot.pictures, bot.handlers.drawing, "
            "bot.handlers.curation, bot.handlers.models, bot.handlers.info; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
