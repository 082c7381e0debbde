#!/usr/bin/env bash
# Starts a local single-node Kafka broker (KRaft) for Clientele and prints its address.
# Data and the broker log live in infra/kafka/.run/ (kept between runs; `kafka-down.sh --wipe` clears it).
# Needs Java 17+ and Maven (the first run downloads the broker's jars from Maven Central).
#   KAFKA_PORT  client port (default: the previous run's, else 9092 when free, else any free port)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUN="$HERE/.run"
mkdir -p "$RUN"

if [ -f "$RUN/kafka.pid" ] && kill -0 "$(cat "$RUN/kafka.pid")" 2>/dev/null; then
  echo "Kafka is already running (pid $(cat "$RUN/kafka.pid")) at $(cat "$RUN/brokers")"
  exit 0
fi

# broker.ts is the one recipe for tests and local runs: compile it and start it detached
"$ROOT/node_modules/.bin/swc" "$HERE/broker.ts" -o "$RUN/broker.js" -C module.type=commonjs -C jsc.target=es2022 -q >/dev/null
port="${KAFKA_PORT:-}"
if [ -z "$port" ] && [ ! -f "$RUN/data/clientele-broker.json" ] && ! (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
  port=9092
fi
cd "$ROOT"
CLIENTELE_KAFKA_HOME="$HERE" KAFKA_PORT="$port" RUN="$RUN" node -e '
  const { startBroker } = require(process.env.RUN + "/broker.js");
  const fs = require("fs");
  const port = process.env.KAFKA_PORT ? Number(process.env.KAFKA_PORT) : undefined;
  startBroker({ dataDir: process.env.RUN + "/data", port, detached: true }).then((b) => {
    fs.writeFileSync(process.env.RUN + "/kafka.pid", String(b.pid));
    fs.writeFileSync(process.env.RUN + "/brokers", b.brokers);
    console.log(`Kafka is running (pid ${b.pid}) at ${b.brokers}`);
    console.log(`  export KAFKA_BROKERS=${b.brokers}            # for Clientele`);
    console.log(`  export CLIENTELE_TEST_KAFKA_BROKERS=${b.brokers}  # tests reuse it instead of starting their own`);
    console.log(`  log: ${b.logFile}`);
    process.exit(0);
  }, (err) => { console.error(err.message); process.exit(1); });
'
