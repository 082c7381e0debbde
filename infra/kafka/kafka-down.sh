#!/usr/bin/env bash
# Stops the broker kafka-up.sh started (by the PID it stored). `--wipe` also deletes its data.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
RUN="$HERE/.run"
if [ -f "$RUN/kafka.pid" ]; then
  pid="$(cat "$RUN/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    echo "Kafka (pid $pid) stopped"
  else
    echo "Kafka (pid $pid) was not running"
  fi
  rm -f "$RUN/kafka.pid" "$RUN/brokers"
else
  echo "no Kafka started by kafka-up.sh"
fi
if [ "${1:-}" = "--wipe" ]; then rm -rf "$RUN/data"; echo "data wiped"; fi
