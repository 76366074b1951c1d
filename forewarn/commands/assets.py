"""`forewarn assets import|list|show|export|schema`: a plant's own sites, lines, types and machines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

assets_app = typer.Typer(
    no_args_is_help=True, help="Asset registry: sites, lines, machine types, machines."
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    app.add_typer(assets_app, name="assets")


@assets_app.command("import")
def assets_import(
    file: Annotated[Path, typer.Argument(help="Asset file: .toml, or .csv with a row per sensor.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and report, change nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create or update sites, lines, machine types and machines from FILE, all or nothing."""
    from forewarn.asset_file import parse_asset_file
    from forewarn.cli import _settings
    from forewarn.clock import now_on
    from forewarn.storage.assets import apply_assets
    from forewarn.storage.db import connect, prepared_database

    doc = parse_asset_file(file)  # a bad file fails before any database work
    settings = _settings()
    with prepared_database(settings) as url, connect(url) as conn:
        now = now_on(conn, settings.clock)  # a new version is valid from the plant's now
        changes = apply_assets(conn, doc, actor="cli", now=now, dry_run=dry_run)
    out = {"file": str(file), "dry_run": dry_run, **changes.as_dict()}
    if as_json:
        typer.echo(json.dumps(out))
        return
    for kind in ("sites", "lines", "machine_types", "machines"):
        created = len(changes.created.get(kind, []))
        updated = len(changes.updated.get(kind, []))
        same = changes.unchanged.get(kind, 0)
        typer.echo(f"{kind:<14} created {created:>5}  updated {updated:>5}  unchanged {same:>5}")
    if dry_run:
        typer.echo("dry run: nothing was changed")


@assets_app.command("list")
def assets_list(as_json: JsonFlag = False) -> None:
    """Sites (with lines), machine types (with version) and machines."""
    from forewarn.cli import _settings
    from forewarn.storage.assets import load_registry, machine_type_list, site_list
    from forewarn.storage.db import connect, prepared_database

    with prepared_database(_settings()) as url, connect(url) as conn:
        sites = site_list(conn)
        types = machine_type_list(conn)
        machines = load_registry(conn).machines
    if as_json:
        out: dict[str, Any] = {
            "sites": sites,
            "machine_types": types,
            "machines": [
                {"id": m.id, "site_id": m.site_id, "line_id": m.line_id, "type_id": m.type_id}
                for m in machines
            ],
        }
        typer.echo(json.dumps(out, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    st = Table(title="Sites")
    for col in ("site", "name", "lines", "machines"):
        st.add_column(col)
    for s in sites:
        st.add_row(s["id"], s["name"], ", ".join(ln["id"] for ln in s["lines"]), str(s["machines"]))
    console.print(st)
    tt = Table(title="Machine types")
    for col in ("type", "name", "version", "sensors", "failure modes", "currency", "machines"):
        tt.add_column(col)
    for t in types:
        tt.add_row(
            t["id"],
            t["name"],
            str(t["version"]),
            str(len(t["sensors"])),
            ", ".join(t["failure_modes"]),
            t["currency"] or "",
            str(t["machines"]),
        )
    console.print(tt)
    console.print(f"{len(machines)} machine(s); `forewarn assets show ID` for one")


@assets_app.command("show")
def assets_show(
    item: Annotated[str, typer.Argument(help="A machine, machine type or site id.")],
    as_json: JsonFlag = False,
) -> None:
    """One machine (with its versions: from when which type and bounds held, and what changed),
    machine type (with versions) or site."""
    from forewarn.cli import _settings
    from forewarn.errors import NotFound
    from forewarn.storage import assets
    from forewarn.storage.assets import load_registry
    from forewarn.storage.db import connect, prepared_database

    with prepared_database(_settings()) as url, connect(url) as conn:
        reg = load_registry(conn)
        out: dict[str, Any]
        machine = next((m for m in reg.machines if m.id == item), None)
        mtype = next((t for t in assets.machine_type_list(conn) if t["id"] == item), None)
        site = next((s for s in assets.site_list(conn) if s["id"] == item), None)
        if machine is not None:
            out = {
                "machine": {
                    "id": machine.id,
                    "site_id": machine.site_id,
                    "line_id": machine.line_id,
                    "type_id": machine.type_id,
                },
                "type_history": assets.machine_assignments(conn, item),
                # what a reading taken from valid_from on means: the type and its version
                "versions": assets.machine_versions(conn, item),
            }
        elif mtype is not None:
            out = {"machine_type": mtype, "versions": assets.type_versions(conn, item)}
        elif site is not None:
            out = {
                "site": site,
                "machines": [m.id for m in reg.machines if m.site_id == item],
            }
        else:
            raise NotFound(f"no machine, machine type or site with id {item!r}")
    text = json.dumps(out, default=str, indent=None if as_json else 2)
    typer.echo(text)


@assets_app.command("export")
def assets_export(
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="toml or json")] = "toml",
) -> None:
    """The registry as an asset file that `forewarn assets import` takes back unchanged."""
    from forewarn.asset_file import file_from_registry, to_toml
    from forewarn.cli import _settings
    from forewarn.errors import InputError
    from forewarn.storage.assets import currencies, load_registry
    from forewarn.storage.db import connect, prepared_database

    if fmt not in ("toml", "json"):
        raise InputError(f"--format: expected toml or json, not {fmt!r}")
    with prepared_database(_settings()) as url, connect(url) as conn:
        doc = file_from_registry(load_registry(conn), currencies(conn))
    text = to_toml(doc) if fmt == "toml" else doc.model_dump_json(indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@assets_app.command("schema")
def assets_schema() -> None:
    """JSON Schema of the asset file (TOML shape; the CSV columns are listed in its description)."""
    from forewarn.asset_file import CSV_COLUMNS, asset_schema

    schema = asset_schema()
    schema["description"] = (
        "Forewarn asset file (TOML). The CSV form has one row per sensor with the columns: "
        + ", ".join(CSV_COLUMNS)
    )
    typer.echo(json.dumps(schema, indent=2))
