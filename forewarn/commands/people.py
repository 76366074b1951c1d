"""`forewarn users ...`: personal accounts for the dashboard (API keys stay for machines)."""

from __future__ import annotations

import json
import secrets
from typing import Annotated

import typer

users_app = typer.Typer(no_args_is_help=True, help="Personal accounts (argon2id-hashed passwords).")


@users_app.command("create")
def users_create(
    name: Annotated[
        str, typer.Option("--name", help="The person's name, shown in the audit trail.")
    ],
    email: Annotated[str, typer.Option("--email", help="Log-in name and notification address.")],
    role: Annotated[str, typer.Option("--role", help="viewer, operator, maintenance or admin.")],
    password: Annotated[
        str | None,
        typer.Option(
            "--password", help="At least 10 characters; generated and printed when omitted."
        ),
    ] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who creates the account.")] = "cli",
) -> None:
    """Create an account; a generated password is printed once."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.keys import audit
    from forewarn.storage.people import create_user

    generated = password is None
    pw = password or secrets.token_urlsafe(12)
    with prepared_database(_settings()) as url, connect(url) as conn:
        try:
            row = create_user(conn, name=name, email=email, role=role, password=pw, actor=actor)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        audit(conn, actor, "user.create", email)
    out = {"id": row["id"], "name": row["name"], "email": row["email"], "role": row["role"]}
    typer.echo(json.dumps(out | ({"password": pw} if generated else {})))


@users_app.command("list")
def users_list() -> None:
    """List accounts (never their passwords)."""
    from forewarn.cli import _settings
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.people import list_users

    with prepared_database(_settings()) as url, connect(url) as conn:
        for u in list_users(conn):
            typer.echo(json.dumps(u, default=str))


@users_app.command("deactivate")
def users_deactivate(user_id: Annotated[int, typer.Argument(help="The account's id.")]) -> None:
    """Stop an account from logging in (its history keeps its name)."""
    from forewarn.cli import _settings
    from forewarn.errors import NotFound
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.keys import audit
    from forewarn.storage.people import set_user_active

    with prepared_database(_settings()) as url, connect(url) as conn:
        if not set_user_active(conn, user_id, False):
            raise NotFound(f"no user {user_id}")
        audit(conn, "cli", "user.deactivate", str(user_id))


def register(app: typer.Typer) -> None:
    """Add `users` to the CLI."""
    app.add_typer(users_app, name="users")
