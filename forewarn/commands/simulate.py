"""`forewarn simulate`: the factory simulator and dataset replay (issue 3).

    forewarn simulate --machines 50 --sim-hours 720 --seed 1 --jsonl plant.jsonl
    forewarn simulate --mqtt-url mqtt://127.0.0.1:1883 --speed 3600
    forewarn simulate replay cmapss --data ../shared/data/cmapss --subset FD001 --jsonl fd001.jsonl
    forewarn simulate replay ai4i --data ../shared/data/ai4i2020/ai4i2020.csv --jsonl ai4i.jsonl

Without --jsonl and --mqtt-url the broker is FOREWARN_MQTT__URL.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Iterable

    from forewarn.contract import Message
    from simulator.sinks import Sink

Jsonl = Annotated[
    Path | None, typer.Option("--jsonl", help="Write JSON lines here instead of publishing.")
]
MqttUrl = Annotated[
    str | None, typer.Option("--mqtt-url", help="Broker URL (default: FOREWARN_MQTT__URL).")
]
Speed = Annotated[
    float,
    typer.Option(
        help="Simulated seconds per wall second (3600 = one hour per second); 0 = as fast as possible."
    ),
]
Qos = Annotated[
    int | None, typer.Option("--qos", min=0, max=1, help="MQTT QoS 0 or 1 (default: settings).")
]
Root = Annotated[
    str | None, typer.Option("--topic-root", help="Topic root (default: forewarn/v1).")
]
ProgressFlag = Annotated[
    bool | None,
    typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
]


Summary = Annotated[
    Path | None, typer.Option("--summary", help="Also write the final report (JSON) to this file.")
]


def _stop_on_signals() -> threading.Event:
    """SIGTERM / SIGINT end the stream cleanly: pending acks are awaited, the summary written."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _report(report: dict[str, object], summary: Path | None) -> None:
    text = json.dumps(report)
    if summary is not None:
        summary.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


def _output(
    jsonl: Path | None,
    mqtt_url: str | None,
    qos: int | None,
    root: str | None,
    commands: bool = False,
) -> tuple[Sink, str]:
    """The sink (file or connected broker) and topic root, from options then settings."""
    from forewarn.logs import setup_logging
    from forewarn.settings import load_settings
    from simulator.app import open_sink

    settings = load_settings()
    setup_logging(settings.log_level)
    m = settings.mqtt
    root = root or m.topic_root
    sink = open_sink(
        jsonl=jsonl,
        mqtt_url=None if jsonl is not None else (mqtt_url or m.url),
        qos=m.qos if qos is None else qos,
        root=root,
        username=m.username,
        password=m.password.get_secret_value() if m.password else None,
        commands=commands,
    )
    return sink, root


def crew(
    api_url: Annotated[
        str, typer.Option("--api-url", help="The Forewarn API, e.g. http://127.0.0.1:8000.")
    ],
    key_file: Annotated[
        Path, typer.Option("--key-file", help="File holding the crew's API key (maintenance role).")
    ],
    machines: Annotated[
        int | None, typer.Option(min=1, help="The plant's machine count (as given to simulate).")
    ] = None,
    speed: Speed = 3600.0,
    seed: Annotated[int, typer.Option(help="Seed of the crew's decisions.")] = 0,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Factory TOML (default: shipped, or FOREWARN_FACTORY)."),
    ] = None,
    summary: Summary = None,
) -> None:
    """A simulated maintenance crew: acknowledges, inspects, dismisses or resolves alerts via the API."""
    from forewarn.factory import load_factory
    from forewarn.logs import setup_logging
    from forewarn.settings import load_settings
    from simulator.crew import run_crew

    settings = load_settings()
    setup_logging(settings.log_level)
    factory = load_factory(config or settings.factory, machines)
    key = key_file.read_text(encoding="utf-8").strip()
    stats = run_crew(
        api_url, key, factory, speed=speed, seed=seed, stop=_stop_on_signals(), summary=summary
    )
    typer.echo(json.dumps(dataclasses.asdict(stats)))


def register(app: typer.Typer) -> None:
    app.command("crew")(crew)
    sim = typer.Typer(
        help="Simulate a factory, or replay a public dataset, over MQTT or to JSON lines."
    )
    replay = typer.Typer(no_args_is_help=True, help="Replay a public dataset as machines.")
    sim.add_typer(replay, name="replay")
    app.add_typer(sim, name="simulate")

    @sim.callback(invoke_without_command=True)
    def simulate(
        ctx: typer.Context,
        machines: Annotated[
            int | None, typer.Option(min=1, help="Scale the config's mix to N machines.")
        ] = None,
        sim_hours: Annotated[
            float, typer.Option("--sim-hours", min=0.0, help="Simulated hours to run.")
        ] = 24.0,
        seed: Annotated[int, typer.Option(help="Same seed + config = identical stream.")] = 0,
        jsonl: Jsonl = None,
        mqtt_url: MqttUrl = None,
        speed: Speed = 0.0,
        config: Annotated[
            Path | None,
            typer.Option("--config", help="Factory TOML (default: shipped, or FOREWARN_FACTORY)."),
        ] = None,
        qos: Qos = None,
        bad_rate: Annotated[
            float | None,
            typer.Option(
                "--bad-rate", min=0.0, max=1.0, help="Share of telemetry sent as malformed bytes."
            ),
        ] = None,
        topic_root: Root = None,
        progress: ProgressFlag = None,
        summary: Summary = None,
        commands: Annotated[
            bool,
            typer.Option(
                "--commands/--no-commands",
                help="Obey maintenance orders on {root}/{site}/{machine}/command (MQTT only).",
            ),
        ] = True,
        start: Annotated[
            datetime | None,
            typer.Option(
                help="Simulated clock start (default: the config's); for resuming a plant."
            ),
        ] = None,
        seq_base: Annotated[
            int, typer.Option("--seq-base", min=0, help="Sequence numbers continue above this.")
        ] = 0,
        state: Annotated[
            Path | None,
            typer.Option(
                "--state",
                help="Resume the plant saved in this file (exactly) and save it there when stopped.",
            ),
        ] = None,
    ) -> None:
        """Run the simulated plant: machines degrade, fail, get repaired (and obey maintenance orders)."""
        if ctx.invoked_subcommand is not None:
            return

        from forewarn.factory import load_factory
        from forewarn.settings import load_settings
        from simulator.app import simulate as run

        factory = load_factory(config or load_settings().factory, machines)
        if start is not None:
            at = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
            factory = dataclasses.replace(factory, start=at.astimezone(UTC))
        sink, root = _output(jsonl, mqtt_url, qos, topic_root, commands)
        report = run(
            factory,
            hours=sim_hours,
            seed=seed,
            sink=sink,
            speed=speed,
            bad_rate=bad_rate,
            root=root,
            progress=sys.stderr.isatty() if progress is None else progress,
            stop=_stop_on_signals(),
            seq_base=seq_base,
            state=state,
        )
        _report(report.as_dict(), summary)

    @replay.command("cmapss")
    def replay_cmapss(
        data: Annotated[
            Path, typer.Option(help="Folder with train_FD00x.txt[.gz] (or its parent).")
        ],
        subset: Annotated[str, typer.Option(help="FD001..FD004")] = "FD001",
        jsonl: Jsonl = None,
        mqtt_url: MqttUrl = None,
        speed: Speed = 0.0,
        qos: Qos = None,
        topic_root: Root = None,
        progress: ProgressFlag = None,
        summary: Summary = None,
    ) -> None:
        """Every training unit of a C-MAPSS subset as a machine, one cycle per message."""
        from simulator.replay import CMAPSS_CYCLE_S, cmapss_messages, read_cmapss

        hours = max(int(r[1]) for r in read_cmapss(data, subset.upper())) * CMAPSS_CYCLE_S / 3600.0
        _replay(
            cmapss_messages(data, subset),
            hours,
            jsonl,
            mqtt_url,
            qos,
            topic_root,
            speed,
            progress,
            summary,
        )

    @replay.command("ai4i")
    def replay_ai4i(
        data: Annotated[Path, typer.Option(help="Path of ai4i2020.csv (or its folder).")],
        jsonl: Jsonl = None,
        mqtt_url: MqttUrl = None,
        speed: Speed = 0.0,
        qos: Qos = None,
        topic_root: Root = None,
        progress: ProgressFlag = None,
        summary: Summary = None,
    ) -> None:
        """The AI4I 2020 process log as one machine, one row per message."""
        from simulator.replay import AI4I_ROW_S, ai4i_messages, read_ai4i

        hours = len(read_ai4i(data)) * AI4I_ROW_S / 3600.0
        _replay(
            ai4i_messages(data), hours, jsonl, mqtt_url, qos, topic_root, speed, progress, summary
        )


def _replay(
    messages: Iterable[Message],
    hours: float,
    jsonl: Path | None,
    mqtt_url: str | None,
    qos: int | None,
    topic_root: str | None,
    speed: float,
    progress: bool | None,
    summary: Path | None,
) -> None:
    """Stream a dataset replay to its sink, then report (shared by every replay command)."""
    from simulator.app import stream_to
    from simulator.replay import REPLAY_START

    sink, root = _output(jsonl, mqtt_url, qos, topic_root)
    report = stream_to(
        messages,
        sink,
        root=root,
        start=REPLAY_START,
        hours=hours,
        speed=speed,
        progress=sys.stderr.isatty() if progress is None else progress,
        stop=_stop_on_signals(),
    )
    _report(report.as_dict(), summary)
