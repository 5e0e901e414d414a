#!/usr/bin/env bash
# Start the embedded Redis (unless REDIS_URL is set), a worker and the web app (the development server,
# or gunicorn with gunicorn.conf.py when WEB=gunicorn); stop all on exit.
set -euo pipefail
HOST="${1:-127.0.0.1}"; PORT="${2:-5000}"
BIN=.venv/bin
if ! $BIN/python -c 'import socket, sys; socket.create_server((sys.argv[1], int(sys.argv[2]))).close()' "$HOST" "$PORT" 2>/dev/null; then
  echo "Port $PORT on $HOST is in use: start with another one, e.g. make run PORT=5001" >&2
  exit 1
fi
if [ -z "${REDIS_URL:-}" ]; then $BIN/crm redis start >/dev/null; fi
$BIN/crm worker &
WORKER=$!
# a second worker for the PBX's events only, so a screen pop never waits behind a transcription
$BIN/crm worker --queues telephony &
TELEPHONY_WORKER=$!
cleanup() {
  kill "$WORKER" "$TELEPHONY_WORKER" 2>/dev/null || true
  wait "$WORKER" "$TELEPHONY_WORKER" 2>/dev/null || true
  if [ -z "${REDIS_URL:-}" ]; then $BIN/crm redis stop >/dev/null || true; fi
}
trap cleanup EXIT INT TERM
echo
echo "== Горячая линия ЖКХ: open http://$HOST:$PORT/ (logins above; Ctrl-C stops web, worker and Redis) =="
echo
if [ "${WEB:-}" = gunicorn ]; then
  # production's server and its request-log redaction (gunicorn.conf.py)
  $BIN/gunicorn -c gunicorn.conf.py --bind "$HOST:$PORT" --workers 2 wsgi:app
else
  # the development server; its request lines are redacted too (crm/weblog.py)
  $BIN/crm run --host "$HOST" --port "$PORT" --no-reload
fi
