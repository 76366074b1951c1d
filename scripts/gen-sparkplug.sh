#!/usr/bin/env bash
# Regenerate ingest/sparkplug/sparkplug_b_pb2.py(.pyi) from the Tahu definition with protoc from
# grpcio-tools, in a throwaway venv (grpcio-tools is not a dependency of Forewarn). The protoc
# version must match the protobuf runtime's major version pinned in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q grpcio-tools
"$tmp/venv/bin/python" -m grpc_tools.protoc -Iingest/sparkplug \
    --python_out=ingest/sparkplug --pyi_out=ingest/sparkplug ingest/sparkplug/sparkplug_b.proto
