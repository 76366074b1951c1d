"""All SQL lives in forewarn/storage: no other package (tests excepted) holds a SQL statement.

A statement is a string literal (docstrings excepted) that reads as select ... from, insert into,
update ... set, delete from, or copy ... from/to. psycopg.sql compositions count too: they are built
from the same literals.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("forewarn", "ingest", "simulator", "api", "dashboard", "models", "tools")
STORAGE = ROOT / "forewarn" / "storage"
# Known and announced: the fleet benchmark (issue 17) landed its reporting queries in the tool
# itself while the SQL moved; they go to forewarn/storage next. Nothing else may join this list.
PENDING: set[Path] = set()
STATEMENT = re.compile(
    r"\bselect\b[\s\S]*\bfrom\b|\binsert\s+into\b|\bupdate\s+[\w.]+\s+set\b|\bdelete\s+from\b"
    r"|\bcopy\s+[\w.(, )]+\s+(from|to)\s+stdin|\bcopy\s+[\w.(, )]+\s+(from|to)\s+stdout",
    re.IGNORECASE,
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string literal; an f-string's literal parts joined."""
    skip = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "x"
                for v in node.values
            )
            out.append((node.lineno, text))
            skip.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            out.append((node.lineno, node.value))
    return out


def sql_outside_storage() -> list[str]:
    """``path:line: statement`` for every SQL statement found outside forewarn/storage."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if STORAGE in path.parents or path in PENDING:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for line, text in _literals(tree):
                if STATEMENT.search(text):
                    snippet = " ".join(text.split())[:70]
                    found.append(f"{path.relative_to(ROOT)}:{line}: {snippet}")
    return sorted(found)


def test_detector_sees_each_statement_kind() -> None:
    for text in (
        "select id from alerts",
        "SELECT 1\nFROM x",
        "insert into readings (a) values (1)",
        "update alerts set status = 'open'",
        "delete from readings where ts < now()",
        "copy readings (machine_id, ts) from stdin",
    ):
        assert STATEMENT.search(text), text
    assert not STATEMENT.search("select the machine to inspect")


def test_no_sql_outside_storage() -> None:
    found = sql_outside_storage()
    assert not found, "SQL outside forewarn/storage:\n" + "\n".join(found)
