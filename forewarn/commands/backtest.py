"""`forewarn backtest`: what predictive maintenance earns against run-to-failure and fixed intervals.

forewarn backtest                       # the stored champion predictions (or, with none, the history)
forewarn backtest --history             # the stored (imported) history, out of sample
forewarn backtest --days 30 --capacity 2
forewarn backtest --simulate --machines 50 --sim-days 120 --seed 1 --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _table(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="Maintenance policies, IN SAMPLE (tuned and scored on the same lives;"
        " cost scaled to the window's operating hours)"
    )
    for col in ("policy", "cost", "downtime h", "failures", "caught", "missed", "false alarms"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, p in out["policies"].items():
        table.add_row(
            name,
            f"{p['cost']:,.0f}",
            f"{p['downtime_h']:,.1f}",
            str(p["failures"]),
            str(p["caught"]),
            str(p["missed"]),
            str(p["false_alarms"]),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # piped: do not squeeze the table to 80 columns
    console.print(table)
    th = out["threshold"]
    console.print(
        f"savings vs run-to-failure: {out['savings_vs_run_to_failure']:,.0f}   "
        f"vs fixed-interval: {out['savings_vs_fixed_interval']:,.0f}   "
        f"threshold: {'never alert' if th is None else th}   "
        f"fixed intervals (h): {out['fixed_interval_h']}"
    )
    for name in ("in_sample", "out_of_sample"):
        f = out.get(name)
        if f:
            console.print(
                f"{name.replace('_', '-')}: saved vs run-to-failure {f['savings_vs_run_to_failure']:,.0f}"
                f" (95 % CI {f['ci_low_vs_run_to_failure']:,.0f} … {f['ci_high_vs_run_to_failure']:,.0f}),"
                f" vs fixed-interval {f['savings_vs_fixed_interval']:,.0f}"
                f" (95 % CI {f['ci_low_vs_fixed_interval']:,.0f} … {f['ci_high_vs_fixed_interval']:,.0f})"
            )
    pol = out.get("policy")
    console.print(
        f"proposed policy version: {pol['version']}"
        if pol
        else f"no policy proposed: {out.get('policy_not_proposed')}"
    )
    if "timings" in out:
        console.print(f"timings (s): {out['timings']}")


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest(
        simulate: Annotated[
            bool, typer.Option("--simulate", help="Simulate a plant into a temporary database.")
        ] = False,
        live_check: Annotated[
            bool,
            typer.Option(
                "--live-check",
                help="Run the real pipeline with the simulated crew on a simulated plant (private"
                " database and broker) and compare its ledger with a backtest of the same period,"
                " machines, models and policy.",
            ),
        ] = False,
        progress_file: Annotated[
            Path | None,
            typer.Option(help="--simulate: write {done, total, stage} JSON here as it runs."),
        ] = None,
        speed: Annotated[
            float, typer.Option(min=60, help="--live-check: simulated seconds per wall second.")
        ] = 3600.0,
        history: Annotated[
            bool,
            typer.Option(
                "--history",
                help="Backtest the stored (e.g. imported) history out of sample: train on its"
                " first part, score the rest (the default when no predictions are stored).",
            ),
        ] = False,
        machines: Annotated[int, typer.Option(min=1, help="--simulate: machines.")] = 50,
        sim_days: Annotated[float, typer.Option(min=2, help="--simulate: simulated days.")] = 120,
        seed: Annotated[int, typer.Option(help="--simulate: random seed.")] = 1,
        train_fraction: Annotated[
            float,
            typer.Option(min=0.1, max=0.9, help="--simulate/--history: share used for training."),
        ] = 0.5,
        days: Annotated[
            float | None,
            typer.Option(min=0.1, help="Backtest the last DAYS of predictions (default: all)."),
        ] = None,
        horizon_h: Annotated[
            float | None, typer.Option(help="Alert horizon (default: the models' horizon).")
        ] = None,
        min_lead_h: Annotated[float, typer.Option(help="Minimum useful lead time.")] = 4.0,
        k: Annotated[
            int | None, typer.Option(help="Consecutive scores (default: alert_k).")
        ] = None,
        cooldown_h: Annotated[float, typer.Option(help="Quiet time after a false alarm.")] = 24.0,
        capacity: Annotated[
            int | None, typer.Option(min=1, help="At most K interventions per 8-hour shift.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        save: Annotated[
            bool,
            typer.Option(
                "--save/--no-save",
                help="--simulate: also store the result and the proposed policy version in the"
                " configured database (where `forewarn policy promote` finds it).",
            ),
        ] = True,
        segments: Annotated[
            int,
            typer.Option(
                min=2,
                help="Rolling origin: pieces of the window (each after the first is scored"
                " out of sample with what was tuned on the pieces before it).",
            ),
        ] = 5,
        curve: Annotated[
            bool, typer.Option("--curve/--no-curve", help="Include the savings curve in --json.")
        ] = True,
    ) -> None:
        """Backtest run-to-failure, fixed-interval and predictive maintenance; store the result."""
        from forewarn.logs import setup_logging
        from forewarn.settings import load_settings
        from models.roi import BacktestConfig

        settings = load_settings()
        setup_logging(settings.log_level)
        config = BacktestConfig(
            horizon_h=horizon_h or settings.models.horizon_h,
            min_lead_h=min_lead_h,
            k=k or settings.models.alert_k,
            cooldown_h=cooldown_h,
            capacity_per_shift=capacity,
        )
        default_policy = config.policy_at(settings.models.alert_high)
        if live_check:
            out = _live_check(settings, machines=machines, days=sim_days, seed=seed, speed=speed)
            typer.echo(
                json.dumps(out, default=str) if as_json else json.dumps(out, indent=2, default=str)
            )
            return
        if simulate:
            from models.runners.backtest import simulate_backtest
            from simulator.engine import run_history

            if save:
                from forewarn.storage.db import prepared_database

                with prepared_database(settings) as url:
                    out = simulate_backtest(
                        simulate=run_history,
                        machines=machines,
                        days=sim_days,
                        seed=seed,
                        config=config,
                        train_fraction=train_fraction,
                        save_url=url,
                        default_policy=default_policy,
                        segments=segments,
                        progress=_progress_writer(progress_file),
                    )
            else:
                out = simulate_backtest(
                    simulate=run_history,
                    machines=machines,
                    days=sim_days,
                    seed=seed,
                    config=config,
                    train_fraction=train_fraction,
                    default_policy=default_policy,
                    segments=segments,
                    progress=_progress_writer(progress_file),
                )
        else:
            from forewarn.errors import NotFound
            from forewarn.storage.db import connect, prepared_database
            from models.runners.backtest import default_window, history_backtest, run_backtest

            with prepared_database(settings) as url, connect(url) as conn:
                window = None
                if not history:
                    try:
                        window = default_window(conn, days)
                    except NotFound:
                        typer.echo(
                            "no champion predictions stored: backtesting the stored history out"
                            f" of sample (training on its first {train_fraction:.0%})",
                            err=True,
                        )
                if window is None:
                    out = history_backtest(
                        conn,
                        config=config,
                        train_fraction=train_fraction,
                        seed=seed,
                        default_policy=default_policy,
                        segments=segments,
                    )
                else:
                    out = run_backtest(
                        conn,
                        window=window,
                        config=config,
                        default_policy=default_policy,
                        segments=segments,
                    )
        if not curve:
            out.pop("curve", None)
        if as_json:
            typer.echo(json.dumps(out, default=str))
        else:
            _table(out)


def _progress_writer(path: Path | None) -> Any:
    """A progress callback writing {done, total, stage} to ``path`` atomically (None: no-op)."""
    if path is None:
        return None

    def write(done: int, total: int, stage: str) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"done": done, "total": total, "stage": stage}))
        tmp.replace(path)

    return write


def _live_check(
    settings: Any, *, machines: int, days: float, seed: int, speed: float
) -> dict[str, Any]:
    """The real pipeline with the crew on a private plant, then its ledger against the backtest."""
    import os
    import tempfile
    import time
    from pathlib import Path

    from forewarn.demo import DemoOptions, run_demo
    from forewarn.factory import load_factory
    from forewarn.storage.db import connect, prepared_database
    from models.runners.livecheck import compare, plant_window
    from simulator.engine import run_history

    t0 = time.monotonic()
    # the live scorer passes once per simulated hour (as a plant's does), so the live policy sees
    # the scores at the cadence the backtest replays; the children inherit this environment
    os.environ["FOREWARN_MODELS__SCORE_CADENCE_S"] = str(max(0.25, 3600.0 / speed))
    with tempfile.TemporaryDirectory(prefix="forewarn-live-check-") as tmp:
        private = settings.model_copy(
            update={
                "state_dir": Path(tmp),
                "db": settings.db.model_copy(update={"url": None}),
                "mqtt": settings.mqtt.model_copy(update={"url": None}),
            }
        )
        opts = DemoOptions(
            machines=machines,
            speed=speed,
            headless=True,
            duration_s=days * 86400.0 / speed,
            seed=seed,
            crew=True,
        )
        demo = run_demo(private, opts)
        factory = load_factory(settings.factory, machines=machines)
        window = plant_window(demo.get("clock", []), factory.start)
        hours = (window[1] - factory.start).total_seconds() / 3600.0 + 1.0
        history = run_history(factory, hours, seed)  # the same plant, nobody acting on it
        with prepared_database(private) as url, connect(url) as conn:
            out = compare(conn, private, history.messages, window, factory.start)
    out["live_run"] = {
        k: demo.get(k)
        for k in (
            "published",
            "stored",
            "lost",
            "predictions",
            "alerts",
            "failures",
            "orders_sent",
            "orders_obeyed",
            "ledger_entries",
            "problems",
        )
    }
    out["machines"], out["sim_days"], out["seed"], out["speed"] = machines, days, seed, speed
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out
