"""Every `forewarn` process names its database connections after its command (pg_stat_activity)."""

from __future__ import annotations

import os

import pytest

from forewarn import cli


@pytest.mark.parametrize(
    ("inherited", "expected"),
    [
        (None, "forewarn contract schema"),
        (
            "forewarn bench fleet",
            "forewarn contract schema",
        ),  # a parent forewarn's name is not kept
        ("plant-etl", "plant-etl"),  # the operator's own name wins
    ],
)
def test_connections_are_named_after_the_command(
    monkeypatch: pytest.MonkeyPatch, inherited: str | None, expected: str
) -> None:
    if inherited is None:
        monkeypatch.delenv("PGAPPNAME", raising=False)
    else:
        monkeypatch.setenv("PGAPPNAME", inherited)
    monkeypatch.setattr("sys.argv", ["forewarn", "contract", "schema"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code in (0, None)
    assert os.environ["PGAPPNAME"] == expected
