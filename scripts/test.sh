#!/usr/bin/env bash
# SAM Studio's whole test suite in one command: installs what is missing, checks that the
# PostgreSQL, Redis and RabbitMQ servers answer (starting them when they are down and we are
# allowed to), then runs ruff, mypy, pytest over tests/ (the SQLite path and the production path
# against the real services, in one run), ESLint over the front end and its tests. Every step
# runs even when an earlier one failed; the script exits non-zero when any failed, and when
# pytest collected no test.
#
# Extra arguments go to pytest, e.g. `scripts/test.sh -k celery -x`.
# The dataset conformance tests also need .venv-oracles (datumaro, whose pins clash with
# requirements.txt), made here from tests/datasets/oracles-requirements.txt.
# SAM_TEST_MYPY=0 leaves out mypy over the application code (about 2 minutes cold on 2 cores).
# In CI (CI=true) the services tests fail instead of skipping when a server is unreachable.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

START=$SECONDS
FAILED=()
PYTEST_SUMMARY="(pytest did not run)"

step() {  # step NAME COMMAND...: run, time and record one check
    local name=$1 started=$SECONDS rc=0
    shift
    log "$name"
    "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        FAILED+=("$name (exit $rc)")
        printf '\033[31m--- %s failed (exit %s) after %ss\033[0m\n' "$name" "$rc" $((SECONDS - started))
    else
        printf '\033[32m--- %s passed in %ss\033[0m\n' "$name" $((SECONDS - started))
    fi
}

# ---------------------------------------------------------------- set-up
ensure_venv
# The conformance tests run datumaro with this interpreter (tests/datasets/test_conformance.py).
step "oracle readers (.venv-oracles)" ensure_oracle_venv
export SAM_ORACLE_PYTHON=${SAM_ORACLE_PYTHON:-$PWD/.venv-oracles/bin/python}
if [ -f frontend/package.json ]; then
    # Browser tests need the built front end in static/app. A failed build is recorded
    # (and the rest still runs) rather than ending the script.
    step "front-end install and build" bash -c '. scripts/lib.sh && build_frontend'
fi

if [ -f frontend/package.json ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        log "Installing Debian's chromium for the browser tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q || warn "apt-get update failed"
        apt-get install -y -q chromium \
            || warn "could not install chromium; browser tests will say why they cannot run"
    else
        warn "/usr/bin/chromium is missing and this is not root: browser tests may be skipped"
    fi
fi

port_open() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

wait_port() {  # wait_port PORT SECONDS
    local i
    for i in $(seq 1 $(($2 * 2))); do
        port_open "$1" && return 0
        sleep 0.5
    done
    return 1
}

ensure_service() {  # ensure_service NAME PORT START-COMMAND
    local name=$1 port=$2 start=$3
    if port_open "$port"; then
        echo "$name answers on 127.0.0.1:$port."
        return 0
    fi
    warn "$name does not answer on 127.0.0.1:$port; trying: $start"
    bash -c "$start" || warn "starting $name failed"
    if wait_port "$port" 60; then
        echo "$name started on 127.0.0.1:$port."
    else
        warn "$name is still down: its tests will skip (or fail, in CI)"
    fi
}

log "Checking the services (PostgreSQL, Redis, RabbitMQ)"
ensure_service PostgreSQL 5432 \
    'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start'
ensure_service Redis 6379 \
    'mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
ensure_service RabbitMQ 5672 'rabbitmq-server -detached'

# ---------------------------------------------------------------- checks
step "ruff check" ruff check .
step "ruff format --check" ruff format --check .
if [ "${SAM_TEST_MYPY:-1}" = 1 ]; then
    step "mypy" mypy
fi

run_pytest() {
    local log_file rc=0
    log_file=$(mktemp)
    python -m pytest tests --durations=10 "$@" 2>&1 | tee "$log_file" || rc=${PIPESTATUS[0]}
    PYTEST_SUMMARY=$(grep -E '^(=+ )?(no tests ran|[0-9]+ (passed|failed|skipped|errors?|deselected|xfailed|xpassed|warnings?)).* in [0-9.]+s' "$log_file" \
        | tail -n1 || true)
    rm -f "$log_file"
    if [ "$rc" -eq 5 ]; then
        echo "pytest collected no test: that is a failure here." >&2
    fi
    return "$rc"
}
step "pytest" run_pytest "$@"

# A report, never a failure: pip-audit asks an advisory service that may be unreachable (this
# machine reaches package registries only). bandit (0 high) runs in tests/security.
step "pip-audit (report only)" bash -c 'timeout 300 pip-audit -r requirements.txt \
    --progress-spinner off || echo "pip-audit: findings or no advisory service (report only)"'

if [ -f frontend/package.json ]; then
    step "front-end lint (npm run lint)" bash -c 'cd frontend && npm run lint'
    step "front-end tests (npm test)" bash -c 'cd frontend && CI=true npm test'
fi

# ---------------------------------------------------------------- summary
log "Summary ($((SECONDS - START)) s)"
echo "pytest: $PYTEST_SUMMARY"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf '\033[31mFAILED:\033[0m %s\n' "${FAILED[@]}"
    exit 1
fi
echo "All checks passed."
