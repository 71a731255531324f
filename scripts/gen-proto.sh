#!/usr/bin/env bash
# Regenerate the gateway's gRPC Python modules from services/gateway/proto/ledgerflow.proto.
# The generated *_pb2.py, *_pb2.pyi and *_pb2_grpc.py are committed, so installs need
# no code generation; run this after editing the .proto (needs grpcio-tools).
# protoc names imports after the .proto's path, so the file is compiled from a tree
# where it sits at ledgerflow/services/gateway/proto/, its import name.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=services/gateway/proto
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/ledgerflow/services/gateway/proto" "$work/out"
cp "$out/ledgerflow.proto" "$work/src/ledgerflow/services/gateway/proto/"
"$python" -m grpc_tools.protoc -I "$work/src" \
  --python_out="$work/out" --pyi_out="$work/out" --grpc_python_out="$work/out" \
  ledgerflow/services/gateway/proto/ledgerflow.proto
cp "$work/out/ledgerflow/services/gateway/proto/"ledgerflow_pb2* "$out/"
echo "generated: $(ls "$out"/ledgerflow_pb2* | tr '\n' ' ')"
