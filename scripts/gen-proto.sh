#!/usr/bin/env bash
# Regenerate the gRPC Python modules from the project's .proto files: the gateway's
# (services/gateway/proto/ledgerflow.proto) and the model server's Open Inference Protocol
# (services/serving/proto/grpc_predict_v2.proto). The generated *_pb2.py, *_pb2.pyi and
# *_pb2_grpc.py are committed, so installs need no code generation; run this after
# editing a .proto (needs grpcio-tools).
# protoc names imports after the .proto's path, so each file is compiled from a tree
# where it sits at ledgerflow/services/<service>/proto/, its import name.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

generate() {  # generate SERVICE NAME: services/SERVICE/proto/NAME.proto
  local out="services/$1/proto" rel="ledgerflow/services/$1/proto"
  mkdir -p "$work/src/$rel" "$work/out"
  cp "$out/$2.proto" "$work/src/$rel/"
  "$python" -m grpc_tools.protoc -I "$work/src" \
    --python_out="$work/out" --pyi_out="$work/out" --grpc_python_out="$work/out" \
    "$rel/$2.proto"
  cp "$work/out/$rel/$2"_pb2* "$out/"
  echo "generated: $(ls "$out/$2"_pb2* | tr '\n' ' ')"
}

generate gateway ledgerflow
generate serving grpc_predict_v2
