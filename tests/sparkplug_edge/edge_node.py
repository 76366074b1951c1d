"""A Sparkplug B edge node from the pysparkplug library, driven over stdin/stdout by the tests.

It runs in its own virtual environment (pysparkplug 0.6.1 needs paho-mqtt < 2; Forewarn uses 2.x),
built by `make install` (see tests/fixtures/sparkplug.py), and talks to the real broker. Commands
on stdin, one JSON object a line: ``{"cmd": "data", "device": D, "values": {metric: number}}``
(DDATA with aliases only, as Ignition sends), ``{"cmd": "deregister", "device": D}`` (DDEATH),
``{"cmd": "gap"}`` (skip one seq, as if a message was
lost), ``{"cmd": "alias", "device": D, "alias": N}`` (DDATA with an alias no birth declared).
Events on stdout, one JSON object a line: ``born`` after the births, ``sent`` with each data
message's seq, ``ncmd`` with the metric names of each command, ``reborn`` after a rebirth.
An NCMD ``Node Control/Rebirth`` = true makes it publish NBIRTH (seq 0) and its DBIRTHs again.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
from typing import Any

import pysparkplug as spb

REBIRTH = "Node Control/Rebirth"
lock = threading.Lock()


def say(**event: Any) -> None:
    with lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--group", required=True)
    ap.add_argument("--edge", required=True)
    ap.add_argument("--devices", required=True, help="comma-separated device ids")
    ap.add_argument("--metrics", required=True, help="comma-separated metric names (Double)")
    ap.add_argument("--client-id", required=True)
    args = ap.parse_args()
    devices = args.devices.split(",")
    names = args.metrics.split(",")

    aliases: dict[tuple[str, str], int] = {}
    counter = itertools.count(1)
    for d in devices:
        for n in names:
            aliases[(d, n)] = next(counter)

    def metric(device: str, name: str, value: float, *, with_name: bool) -> spb.Metric:
        return spb.Metric(
            timestamp=spb.get_current_timestamp(),
            name=name if with_name else None,
            datatype=spb.DataType.DOUBLE,
            value=value,
            alias=aliases[(device, name)],
        )

    node_ref: list[spb.EdgeNode] = []

    def births() -> None:
        node = node_ref[0]
        node._EdgeNode__seq_cycler = itertools.cycle(range(256))  # type: ignore[attr-defined]
        n_birth = spb.NBirth(
            timestamp=spb.get_current_timestamp(),
            seq=node._seq,
            metrics=(*node.metrics.values(), birth_bd_seq[0]),
        )
        publish(spb.MessageType.NBIRTH, None, n_birth)
        for device in node.devices.values():
            d_birth = spb.DBirth(
                timestamp=spb.get_current_timestamp(),
                seq=node._seq,
                metrics=tuple(device.metrics.values()),
            )
            publish(spb.MessageType.DBIRTH, device.device_id, d_birth)

    def publish(kind: spb.MessageType, device: str | None, payload: Any, qos: int = 0) -> None:
        topic = spb.Topic(
            message_type=kind, group_id=args.group, edge_node_id=args.edge, device_id=device
        )
        node_ref[0]._client.publish(
            spb.Message(topic=topic, payload=payload, qos=spb.QoS(qos), retain=False),
            include_dtypes=True,
        )

    def on_cmd(_node: spb.EdgeNode, message: spb.Message) -> None:
        metric_names = [m.name for m in message.payload.metrics]
        say(event="ncmd", metrics=metric_names)
        if any(m.name == REBIRTH and m.value for m in message.payload.metrics):
            with lock:
                births()
            say(event="reborn")

    client = spb.Client(client_id=args.client_id)
    node = spb.EdgeNode(args.group, args.edge, metrics=[], client=client, cmd_callback=on_cmd)
    node_ref.append(node)
    for d in devices:
        node.register(spb.Device(d, metrics=[metric(d, n, 0.0, with_name=True) for n in names]))
    birth_bd_seq: list[spb.Metric] = []
    original_publish = client.publish

    def recording_publish(message: spb.Message, *, include_dtypes: bool = False) -> None:
        # the NBIRTH's bdSeq ties this session's births to its will (NDEATH): keep it for rebirths
        if message.topic.message_type == spb.MessageType.NBIRTH and not birth_bd_seq:
            birth_bd_seq.extend(m for m in message.payload.metrics if m.name == "bdSeq")
        original_publish(message, include_dtypes=include_dtypes)
        if message.topic.message_type == spb.MessageType.DBIRTH and not born.is_set():
            born.set()

    born = threading.Event()
    client.publish = recording_publish  # type: ignore[method-assign]
    node.connect(args.host, port=args.port, keepalive=5, blocking=False)
    if not born.wait(15):
        say(event="error", detail="no births published")
        sys.exit(1)
    say(event="born", bdSeq=birth_bd_seq[0].value if birth_bd_seq else None)

    for line in sys.stdin:
        cmd = json.loads(line)
        with lock:
            if cmd["cmd"] == "data":
                dev = cmd["device"]
                metrics = tuple(
                    metric(dev, n, float(v), with_name=False) for n, v in cmd["values"].items()
                )
                seq = node._seq
                publish(
                    spb.MessageType.DDATA,
                    dev,
                    spb.DData(spb.get_current_timestamp(), seq=seq, metrics=metrics),
                    qos=1,
                )
                # keep the device's current values, so a rebirth reports them
                node.devices[dev].update(
                    [metric(dev, n, float(v), with_name=True) for n, v in cmd["values"].items()]
                )
            elif cmd["cmd"] == "deregister":
                seq = None
                node.deregister(cmd["device"])  # publishes the device's DDEATH
            elif cmd["cmd"] == "gap":
                seq = node._seq  # consumed, never sent: the host sees a gap
            elif cmd["cmd"] == "alias":
                seq = node._seq
                bad = spb.Metric(
                    timestamp=spb.get_current_timestamp(),
                    name=None,
                    datatype=spb.DataType.DOUBLE,
                    value=1.0,
                    alias=int(cmd["alias"]),
                )
                publish(
                    spb.MessageType.DDATA,
                    cmd["device"],
                    spb.DData(spb.get_current_timestamp(), seq=seq, metrics=(bad,)),
                    qos=1,
                )
            else:
                raise SystemExit(f"unknown command {cmd}")
        say(event="sent", cmd=cmd["cmd"], seq=seq)


if __name__ == "__main__":
    main()
