"""The local harness's imports point one way: the user's tools (the CLI on top) use the AWS account
(the local stack), which uses the peers (the IICS emulator), never back up.

Read from the source, so a lazy import inside a function counts as much as one at the top: either
ties the two modules together. A module's ``if __name__ == "__main__":`` block is left out: it runs
only as a script, as its own ``__main__`` module, and is how ``python -m`` reaches the CLI.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import iics_monitor_local

PACKAGE = Path(iics_monitor_local.__file__).parent
NAME = "iics_monitor_local"


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) and "__name__" in ast.unparse(node.test)


def _imported(tree: ast.Module) -> set[str]:
    """The package's modules that ``tree`` imports anywhere, outside its ``__main__`` block."""
    found: set[str] = set()
    body = [node for node in tree.body if not _is_main_guard(node)]
    for node in (inner for top in body for inner in ast.walk(top)):
        if isinstance(node, ast.ImportFrom) and node.module == NAME:
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(NAME + "."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(NAME + ".")}
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
            # import_module(f"iics_monitor_local.{name}") may load any module of the package
            found |= {"*"} if f"{NAME}." in ast.unparse(node.args[0]) else set()
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    graph = {}
    for module in modules:
        targets = _imported(ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8")))
        graph[module] = (modules - {module}) if "*" in targets else (targets & modules) - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the path that closes it (depth-first search)."""
    found, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            found.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    return found


def test_no_module_of_the_harness_imports_one_that_imports_it_back():
    assert cycles(import_graph()) == []


def test_nothing_imports_the_cli_and_the_stack_does_not_import_the_tools():
    graph = import_graph()

    assert [module for module, targets in graph.items() if "cli" in targets] == []
    assert graph["stack"] & {"cli", "watch", "progress", "demo", "chaos"} == set()
    assert graph["emulator"] & {"cli", "stack", "watch"} == set()


def test_each_module_imports_alone_in_a_fresh_interpreter():
    # An import cycle at module level fails when its second module is imported first.
    for module in ("stack", "emulator", "watch", "progress", "cli"):
        done = subprocess.run(  # noqa: S603 - this interpreter
            [sys.executable, "-c", f"import {NAME}.{module}"], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"{module}: {done.stderr}"
