#!/usr/bin/env bash
# Regenerate the model server's gRPC Python modules from
# services/serving/proto/grpc_predict_v2.proto (the Open Inference Protocol). The generated
# files are committed, as the gateway's are (scripts/gen-proto.sh); run this after editing
# the .proto (needs grpcio-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=services/serving/proto
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/ledgerflow/services/serving/proto" "$work/out"
cp "$out/grpc_predict_v2.proto" "$work/src/ledgerflow/services/serving/proto/"
"$python" -m grpc_tools.protoc -I "$work/src" \
  --python_out="$work/out" --pyi_out="$work/out" --grpc_python_out="$work/out" \
  ledgerflow/services/serving/proto/grpc_predict_v2.proto
cp "$work/out/ledgerflow/services/serving/proto/"grpc_predict_v2_pb2* "$out/"
echo "generated: $(ls "$out"/grpc_predict_v2_pb2* | tr '\n' ' ')"
