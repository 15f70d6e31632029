#!/usr/bin/env bash
# SAM Studio, embedded profile, in one command: installs what is missing (.venv, Python
# requirements, the front-end build), migrates the SQLite database, creates the demo admin
# and demo project, then runs the ASGI server (daphne) and two local Celery workers on a
# broker that needs no server (a spool directory). Ctrl-C stops them all.
#
# Environment: HOST (127.0.0.1), PORT (8000), SAM_DEMO_PASSWORD (else one generated once and
# kept in $SAM_DATA_DIR/demo-admin-password), SAM_DATA_DIR (var/), PYTHON (python3),
# SAM_SKIP_DEMO=1 to skip the demo data, SAM_DEFAULT_MODEL (auto), SAM_DOWNLOAD_BASE_URL (a
# checkpoint mirror). Settings come from backend.settings.local unless
# DJANGO_SETTINGS_MODULE says otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

START=$SECONDS
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-backend.settings.local}
export SAM_DATA_DIR=${SAM_DATA_DIR:-$PWD/var}
(umask 077 && mkdir -p "$SAM_DATA_DIR")

ensure_venv
build_frontend

log "Migrating the database"
python manage.py migrate --noinput
log "Collecting static files"
python manage.py collectstatic --noinput -v0

# SAM_DEFAULT_MODEL=auto: MobileSAM is downloaded when the network allows (falling back to
# the offline demo model within SAM_DOWNLOAD_CONNECT_TIMEOUT s); every present model's
# browser decoder is exported now, so the first workspace opened does not wait for one.
log "Preparing the models"
python manage.py sam_models_prepare

USERNAME=admin
if [ "${SAM_SKIP_DEMO:-0}" != 1 ]; then
    PASSWORD_FILE=$SAM_DATA_DIR/demo-admin-password
    if [ -z "${SAM_DEMO_PASSWORD:-}" ]; then
        if [ ! -s "$PASSWORD_FILE" ]; then
            (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(12))' > "$PASSWORD_FILE")
        fi
        SAM_DEMO_PASSWORD=$(cat "$PASSWORD_FILE")
    fi
    export SAM_DEMO_PASSWORD
    log "Creating the demo admin and project"
    python manage.py sam_demo --username "$USERNAME"
fi

PIDS=()
stop() {
    trap - INT TERM EXIT
    if [ ${#PIDS[@]} -gt 0 ]; then
        log "Stopping the server and the workers"
        kill -TERM "${PIDS[@]}" 2> /dev/null || true
        # A warm shutdown lets a running task finish; after 30 s, stop what is left.
        local pid _
        for _ in $(seq 1 60); do
            kill -0 "${PIDS[@]}" 2> /dev/null || break
            sleep 0.5
        done
        for pid in "${PIDS[@]}"; do
            if kill -0 "$pid" 2> /dev/null; then
                warn "process $pid did not stop within 30 s; killing it"
                pkill -KILL -P "$pid" 2> /dev/null || true
                kill -KILL "$pid" 2> /dev/null || true
            fi
        done
        wait "${PIDS[@]}" 2> /dev/null || true
    fi
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

# Two workers: embeddings get a process of their own, so a long job (segment everything,
# proposals, training, an export) never holds back an upload; the jobs worker also runs the
# periodic sweeps (celery beat: expired exports).
log "Starting the Celery workers (queue embeddings; queue default with beat)"
celery -A backend worker -Q embeddings -c 1 --loglevel=INFO \
    --without-gossip --without-mingle --without-heartbeat -n "samstudio-embeddings@%h" &
PIDS+=($!)
celery -A backend worker -Q default -c 1 --loglevel=INFO -B \
    --schedule "$SAM_DATA_DIR/celerybeat-schedule" \
    --without-gossip --without-mingle --without-heartbeat -n "samstudio-jobs@%h" &
PIDS+=($!)

log "Starting the ASGI server (daphne) on http://$HOST:$PORT/"
daphne -b "$HOST" -p "$PORT" backend.asgi:application &
PIDS+=($!)

# Wait until the server answers (or one of the processes dies).
URL="http://$HOST:$PORT/"
READY=0
for _ in $(seq 1 240); do
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2> /dev/null || die "a process exited during start-up (see its output above)"
    done
    if python - "$URL" << 'EOF' 2> /dev/null; then
import sys
import urllib.error
import urllib.request

try:
    urllib.request.urlopen(sys.argv[1] + "admin/login/", timeout=2)
except urllib.error.HTTPError as exc:
    sys.exit(0 if exc.code < 500 else 1)
EOF
        READY=1
        break
    fi
    sleep 0.5
done
[ "$READY" = 1 ] || die "the server did not answer on $URL within 2 minutes"

cat << EOF

  SAM Studio is ready ($((SECONDS - START)) s): $URL
    admin:     ${URL}admin/
    API docs:  ${URL}api/docs/
EOF
if [ "${SAM_SKIP_DEMO:-0}" != 1 ]; then
    echo "    login:     $USERNAME / $SAM_DEMO_PASSWORD"
fi
printf '\n  Press Ctrl-C to stop.\n\n'

# Until Ctrl-C, or until any process exits (then stop the others).
wait -n "${PIDS[@]}" || true
