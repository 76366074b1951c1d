"""`forewarn train`, `forewarn score`, `forewarn models list|promote|rollback`."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(no_args_is_help=True, help="Model registry: versions and aliases.")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("score")(score)
    app.command("retrain")(retrain)
    app.add_typer(models_app, name="models")


def train(
    simulate_days: Annotated[
        float,
        typer.Option(help="Train on this many days of simulated history instead of the database."),
    ] = 0.0,
    machines: Annotated[int, typer.Option(help="Machines in the simulated history.")] = 45,
    seed: Annotated[int, typer.Option(help="Seed for the simulation and the models.")] = 0,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Only types with no champion yet.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    progress_file: Annotated[
        Path | None,
        typer.Option(
            "--progress-file",
            help="Also write progress here as JSON (done, total, stage): the demo draws its bar from it.",
        ),
    ] = None,
) -> None:
    """Train one model bundle per machine type, register it, champion or challenger."""
    from forewarn.cli import _settings
    from forewarn.storage.assets import upsert_registry
    from forewarn.storage.db import prepared_database
    from models.runners.history import machine_types
    from models.runners.model_registry import load_alias, model_name
    from models.runners.training import train_from_db, train_from_frames

    settings = _settings()
    with prepared_database(settings) as url, __import__("psycopg").connect(url) as conn:
        if simulate_days > 0:
            from forewarn.factory import load_factory
            from models.frames import messages_frames
            from simulator.engine import run_history

            factory = load_factory(settings.factory, machines=machines)
            registry = factory.registry()
            types = [
                (t, [m.id for m in registry.machines if m.type_id == t.id]) for t in registry.types
            ]
            if if_missing:
                upsert_registry(conn, registry)  # the types must exist for their models
                conn.commit()
                types = [
                    tm for tm in types if load_alias(conn, model_name(tm[0].id), "champion") is None
                ]
            if not types:
                typer.echo("every machine type already has a champion; nothing to train")
                return
            from rich.progress import Progress

            total = len(types) + 1

            def report(done: int, stage: str) -> None:
                if progress_file is not None:
                    tmp = progress_file.with_suffix(".tmp")
                    tmp.write_text(json.dumps({"done": done, "total": total, "stage": stage}))
                    tmp.replace(progress_file)

            with Progress(transient=True) as progress:
                task = progress.add_task("simulating history", total=total)
                report(0, f"simulating {simulate_days:g} days of {machines} machines")
                history = run_history(factory, simulate_days * 24.0, seed)
                readings, events = messages_frames(history.messages)
                progress.update(task, advance=1, description="training")
                results = []
                for i, tm in enumerate(types, start=1):
                    report(i, f"training {tm[0].id} ({i} of {len(types)})")
                    results += train_from_frames(
                        conn, [tm], readings, events, horizon_h=settings.models.horizon_h, seed=seed
                    )
                    progress.update(task, advance=1)
                report(total, "trained")
        else:
            if not machine_types(conn):
                raise typer.BadParameter(
                    "the database has no machines; run the simulator or ingest first"
                )
            results = train_from_db(
                conn, horizon_h=settings.models.horizon_h, seed=seed, only_missing=if_missing
            )
    out = [r.as_dict() for r in results]
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    for r in out:
        metrics = ", ".join(
            f"{k}={v:.3g}"
            for k, v in r["metrics"].items()
            if k in ("roc_auc", "pr_auc", "brier", "rul_mae_h")
        )
        typer.echo(f"{r['model']} v{r['version']} -> {r['alias']}: {metrics} {r['compared'] or ''}")


def score(
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep scoring at the configured cadence.")
    ] = False,
    metrics_port: Annotated[
        int, typer.Option(help="With --loop: serve /metrics, /healthz, /readyz here (0 = off).")
    ] = 0,
) -> None:
    """Score every active machine with the champion, challenger and online models."""
    from forewarn.cli import _settings
    from forewarn.storage.db import prepared_database
    from models.runners.scoring import ScoringState, run_scoring_loop, score_once

    settings = _settings()
    with prepared_database(settings) as url:
        if not loop:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                typer.echo(f"wrote {score_once(conn, settings, ScoringState())} prediction(s)")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        from forewarn.health import LoopHealth

        health = LoopHealth("scoring", max_age_s=max(60.0, 10 * settings.models.score_cadence_s))
        server = health.serve(metrics_port, settings.metrics_host)
        run_scoring_loop(settings, url, stop=stop, health=health)
        if server is not None:
            server.shutdown()


def retrain(
    every_h: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="Retrain when the newest version's data is this old, in plant hours"
            " (default FOREWARN_MODELS__RETRAIN_EVERY_H, 24).",
        ),
    ] = None,
    min_gap_h: Annotated[
        float, typer.Option(min=0.0, help="Drift retrains no sooner than this after the last.")
    ] = 1.0,
) -> None:
    """Retrain on a schedule, or early when a drift detector fired; promote only if better."""
    from forewarn.cli import _settings
    from forewarn.storage.db import prepared_database
    from models.runners.training import run_retrain_loop

    settings = _settings()
    with prepared_database(settings) as url:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        run_retrain_loop(
            settings,
            url,
            stop=stop,
            every_s=(every_h or settings.models.retrain_every_h) * 3600.0,
            min_gap_s=min_gap_h * 3600.0,
        )


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every model version with metrics and aliases."""
    import psycopg

    from forewarn.cli import _settings
    from forewarn.storage.db import prepared_database
    from forewarn.storage.model_registry import list_versions

    with prepared_database(_settings()) as url, psycopg.connect(url) as conn:
        rows = list_versions(conn)
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    for r in rows:
        typer.echo(
            f"{r['name']:<16} v{r['version']:<3} {','.join(r['aliases']) or '-':<20}"
            f" pr_auc={r['metrics'].get('pr_auc', float('nan')):.3f} trained {r['created_at']:%Y-%m-%d %H:%M}"
        )


@models_app.command("show")
def models_show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Champion versions with their metrics, and the calibration of live predictions.

    Calibration compares the champion's probabilities with what happened (a failure within the
    horizon after each prediction whose horizon has passed): reliability bins, Brier, ECE.
    """
    from forewarn.cli import _settings
    from forewarn.storage.alerts import labelled_predictions
    from forewarn.storage.db import connect, prepared_database
    from forewarn.storage.model_registry import list_versions
    from models.calibration import calibration_report

    settings = _settings()
    horizon = settings.models.horizon_h
    with prepared_database(settings) as url, connect(url) as conn:
        versions = [
            {k: v for k, v in r.items() if k in ("name", "version", "aliases", "metrics")}
            for r in list_versions(conn)
            if "champion" in (r.get("aliases") or [])
        ]
        report = calibration_report(
            labelled_predictions(conn, horizon_h=horizon), horizon_h=horizon
        )
    out = {"champions": versions, "calibration": report}
    if as_json:
        typer.echo(json.dumps(out, default=str))
        return
    for v in versions:
        typer.echo(f"{v['name']} v{v['version']} (champion)")
    typer.echo(
        f"calibration of live predictions: n={report['n']} positives={report['positives']}"
        f" Brier={report['brier']} ECE={report['ece']}"
    )
    for b in report["bins"]:
        typer.echo(
            f"  P in [{b['bin'][0]:.1f}, {b['bin'][1]:.1f}): predicted {b['mean_predicted']:.2f},"
            f" observed {b['observed_rate']:.2f} (n={b['count']})"
        )


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Model name, e.g. pm-cnc.")],
    version: Annotated[int, typer.Argument(help="Version number to promote.")],
    alias: Annotated[str, typer.Option(help="champion or challenger")] = "champion",
) -> None:
    """Point an alias at a version (audited)."""
    _move("promote", name, alias, version)


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="Model name, e.g. pm-cnc.")],
    alias: Annotated[str, typer.Option(help="champion or challenger")] = "champion",
) -> None:
    """Point an alias back at its previous version (audited)."""
    _move("rollback", name, alias, None)


def _move(action: str, name: str, alias: str, version: int | None) -> None:
    import psycopg

    from forewarn.cli import _settings
    from forewarn.storage import model_registry
    from forewarn.storage.db import prepared_database

    with prepared_database(_settings()) as url, psycopg.connect(url) as conn, conn.transaction():
        if version is None:
            change = model_registry.rollback(conn, name, alias, actor="cli")
        else:
            change = model_registry.promote(conn, name, version, alias, actor="cli")
    typer.echo(json.dumps(change))
