"""`forewarn connect opcua` (equipment connectors that publish the message contract)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

connect_app = typer.Typer(no_args_is_help=True, help="Connect equipment (OPC UA) to the broker.")


def opcua(
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="opc.tcp://HOST:PORT (optionally /PATH); default FOREWARN_OPCUA__ENDPOINT."
        ),
    ] = None,
    map_file: Annotated[
        Path | None,
        typer.Option(
            "--map", help="Node map (TOML: machines and their sensors' nodes); see the README."
        ),
    ] = None,
) -> None:
    """Subscribe to mapped OPC UA nodes and publish contract telemetry for their machines.

    Buffers on disk while the broker is unreachable and reconnects to both sides with backoff;
    runs until SIGTERM/SIGINT. The broker is FOREWARN_MQTT__URL; security, user and sampling
    settings are FOREWARN_OPCUA__*.
    """
    from connectors.mapping import load_map
    from connectors.opcua import OpcuaConnector
    from forewarn.cli import _settings
    from forewarn.errors import ConfigError
    from forewarn.health import serve

    settings = _settings()
    oc = settings.opcua
    endpoint = endpoint or oc.endpoint
    if not endpoint or not endpoint.startswith("opc.tcp://"):
        raise ConfigError("FOREWARN_OPCUA__ENDPOINT", "give --endpoint opc.tcp://HOST:PORT")
    path = map_file or oc.map_file
    if path is None:
        raise ConfigError("FOREWARN_OPCUA__MAP_FILE", "give --map FILE")
    if settings.mqtt.url is None:
        raise ConfigError(
            "FOREWARN_MQTT__URL", "the connector publishes to ingest's broker: set it"
        )
    node_map = load_map(path)
    connector = OpcuaConnector(
        oc,
        endpoint,
        node_map,
        settings.mqtt.url,
        root=settings.mqtt.topic_root,
        buffer_dir=oc.buffer_dir or settings.state_dir / "opcua",
        mqtt_username=settings.mqtt.username,
        mqtt_password=settings.mqtt.password.get_secret_value() if settings.mqtt.password else None,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = None
    if oc.metrics_port:
        server = serve(
            connector.metrics.registry,
            lambda: connector.metrics.value("forewarn_opcua_server_connected") == 1,
            oc.metrics_port,
            settings.metrics_host,
            name="opcua-metrics",
        )
    try:
        connector.run(stop)
    finally:
        if server is not None:
            server.shutdown()


def register(app: typer.Typer) -> None:
    connect_app.command("opcua")(opcua)
    app.add_typer(connect_app, name="connect")
