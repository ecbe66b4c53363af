"""Layering: fiscal and drivers import nothing of ours; cloud imports fiscal only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("agent", "drivers", "fiscal", "cloud")
FORBIDDEN = {
    "fiscal": {"agent", "drivers", "cloud"},
    "drivers": {"agent", "fiscal", "cloud"},
    "cloud": {"agent", "drivers"},
}


def imported_roots(path: Path) -> set[str]:
    """Return the top-level package of every absolute import in a module, at any depth."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_import_linter_contracts_are_kept() -> None:
    """lint-imports (contracts in pyproject.toml) exits 0."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_walk_sees_the_fiscal_package() -> None:
    """The AST check below is not vacuous: it reads more than ten fiscal modules."""
    found = modules("fiscal")
    assert len(found) > 10
    assert ROOT / "fiscal" / "chain.py" in found
    assert "fiscal" in imported_roots(ROOT / "fiscal" / "chain.py")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_imports(package: str) -> None:
    """No module of the package imports a forbidden package of ours, even inside a function."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in modules(package)
    }
    assert {name: roots for name, roots in offenders.items() if roots} == {}


def test_the_walk_catches_a_forbidden_import(tmp_path: Path) -> None:
    """A nested or dynamic import of agent is detected by the walk itself."""
    module = tmp_path / "bad.py"
    module.write_text("import importlib\n"
                      "def f():\n    from agent.cli import main\n"
                      "x = importlib.import_module('cloud.sync')\nimport drivers.scale as s\n")
    assert {"agent", "cloud", "drivers"} <= imported_roots(module)
