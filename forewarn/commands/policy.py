"""`forewarn policy show|list|promote`: the versioned alert policy the alert engine runs.

forewarn policy show --json        # the live version, its per-type policies and backtested figures
forewarn policy list               # stored versions, newest first
forewarn policy promote 3          # the alert engine uses version 3 from its next pass (audited)
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

policy_app = typer.Typer(no_args_is_help=True, help="Alert policy versions.")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The live policy version, its per-type policies and its backtested figures."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.policies import policy_overview
    from models.policy import settings_policy

    settings = _settings()
    with prepared_database(settings) as url, connect(url) as conn:
        out = policy_overview(conn, settings_policy(settings).to_dict())
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    typer.echo(
        f"live policy version: {out['version'] or 'none (settings)'}  source: {out['source']}"
    )
    typer.echo(
        json.dumps({"policy": out["policy"], "figures": out["figures"]}, indent=2, default=str)
    )


@policy_app.command("list")
def list_versions(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Stored policy versions, newest first."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.policies import list_policies

    settings = _settings()
    with prepared_database(settings) as url, connect(url) as conn:
        rows = list_policies(conn)
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    for r in rows:
        live = "  (live)" if r["live"] else ""
        typer.echo(f"{r['version']:>4}  {r['created_at']:%Y-%m-%d %H:%M}  {r['source']}{live}")


@policy_app.command("promote")
def promote(
    version: Annotated[int, typer.Argument(help="The policy version to make live.")],
    actor: Annotated[str, typer.Option(help="Who promotes (audit log).")] = "cli",
) -> None:
    """Make VERSION the live alert policy; the alert engine uses it from its next pass."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.policies import promote_policy

    settings = _settings()
    with prepared_database(settings) as url, connect(url) as conn, conn.transaction():
        change = promote_policy(conn, version, actor=actor)
    typer.echo(json.dumps(change))
