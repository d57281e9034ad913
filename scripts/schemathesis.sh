#!/usr/bin/env bash
# Fuzz the REST API against its own OpenAPI schema with schemathesis.
#
# Starts Steward under uvicorn on a free port with a fresh database (SQLite in
# var/schemathesis/ unless DATABASE_URL is set; CI runs it on PostgreSQL, which refuses text
# SQLite takes), seeds the demo users and an API token, and runs schemathesis against
# /api/v1/schema/ with that token, with negative data as well as positive and every check
# (exceptions and their reasons in scripts/schemathesis.toml). Fails on any server error, any
# response that does not match the schema, valid data refused or invalid data accepted.
# One worker: hypothesis parses lambdas with `ast`, which is not thread-safe on Python 3.11.
# Bounded: SCHEMATHESIS_MAX_TIME seconds of fuzzing (default 90; about 2 minutes in all).
#
#   scripts/schemathesis.sh                 # what CI runs
#   scripts/schemathesis.sh --seed 1234     # extra arguments go to `schemathesis run`
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="${PY:-$ROOT/.venv/bin/python}"
ST="$(dirname "$PY")/schemathesis"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-90}"
# A fixed seed: CI explores the same cases run after run, so a red run is the code's doing,
# not the draw's. Pass --seed (or SCHEMATHESIS_SEED) to explore others.
SEED="${SCHEMATHESIS_SEED:-295092923580106001384590663270401801479}"

export STEWARD_DATA_DIR="${STEWARD_DATA_DIR:-$ROOT/var/schemathesis}"
export DEBUG=false
export Q_CLUSTER_NAME="${Q_CLUSTER_NAME:-steward-schemathesis}"
# The fuzzer is allowed to be fast: throttling is tested in the test suite instead.
export API_THROTTLE_USER=1000000/min API_THROTTLE_TOKEN=1000000/min
# Event streams of running jobs close after a second so no request hangs.
export API_EVENT_STREAM_MAX_SECONDS=1

if [ -z "${DATABASE_URL:-}" ]; then
  rm -rf "$STEWARD_DATA_DIR"
fi
mkdir -p "$STEWARD_DATA_DIR"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py seed_demo >/dev/null
# The demo admin: may use every endpoint, review included (four-eyes still applies).
TOKEN=$("$PY" manage.py create_api_token admin --name schemathesis)

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m uvicorn config.asgi:application --host 127.0.0.1 --port "$PORT" --log-level warning \
  >"$STEWARD_DATA_DIR/uvicorn.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  if "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/api/v1/schema/')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

status=0
"$ST" --config-file "$ROOT/scripts/schemathesis.toml" run "http://127.0.0.1:$PORT/api/v1/schema/" \
  --header "Authorization: Bearer $TOKEN" \
  --checks all \
  --mode all \
  --phases examples,coverage,fuzzing,stateful \
  --max-time "$MAX_TIME" \
  --seed "$SEED" \
  --request-timeout 10 \
  --workers 1 \
  --generation-database none \
  --no-color \
  "$@" || status=$?
if [ "$status" != 0 ]; then
  echo "--- server log ($STEWARD_DATA_DIR/uvicorn.log)"
  tail -n 60 "$STEWARD_DATA_DIR/uvicorn.log"
fi
exit "$status"
