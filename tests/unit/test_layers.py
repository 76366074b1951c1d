"""The layers import-linter cannot see: what the CLI loads at import, and that its imports are lazy.

import-linter (pyproject, run by scripts/check) holds the package contracts; it reads every import,
including those inside functions. These tests hold the other half of the rule: the composition
modules reach process packages and tools/ only inside their command bodies, so `forewarn --help`
stays fast and a broken component cannot break another's command.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAZY_ONLY = ("ingest", "simulator", "api", "dashboard", "models", "tools", "connectors")
COMPOSITION = [ROOT / "forewarn" / "cli.py", *sorted((ROOT / "forewarn" / "commands").glob("*.py"))]


def _top_level_imports(path: Path) -> list[str]:
    """Modules imported when ``path`` is imported (outside function bodies and TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only, never run
            if isinstance(child, ast.Import):
                found.extend(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append(child.module)
            visit(child)

    visit(tree)
    return found


def test_composition_modules_import_processes_and_tools_only_inside_commands() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in COMPOSITION
        for name in _top_level_imports(path)
        if name.split(".")[0] in LAZY_ONLY
    }
    assert not offenders, f"module-level imports of process packages or tools: {sorted(offenders)}"


def test_cli_import_loads_no_process_package_or_tool() -> None:
    code = (
        "import json, sys; import forewarn.cli; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {LAZY_ONLY!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
