#!/usr/bin/env bash
# The whole pipeline on one machine, nothing else installed:
# simulated devices -> edge gateway -> embedded MQTT broker -> cloud ingest -> SQLite -> alerts + API.
# Extra arguments go to `akita demo` (try: scripts/demo.sh --help).
source "$(dirname "$0")/_env.sh"
ensure_venv demo
cd "$ROOT"
exec "$VENV/bin/akita" demo "$@"
