# Shared steps of scripts/run.sh and scripts/test.sh; sourced, never run on its own.
# Each step is idempotent and quick when there is nothing to do.

log() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# A stamp: the sha256 of the given files' contents (missing files count as empty).
files_hash() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# .venv with requirements.txt then requirements-sam2.txt installed (sam2's sdist builds against
# the torch installed by the first step); pip runs only when either file changed.
ensure_venv() {
    local python=${PYTHON:-python3}
    if [ ! -x .venv/bin/python ]; then
        log "Creating the virtual environment .venv ($($python --version 2>&1))"
        "$python" -m venv .venv || die "could not create .venv with $python"
    fi
    # shellcheck disable=SC1091
    . .venv/bin/activate
    local want have
    want=$(files_hash requirements.txt requirements-sam2.txt)
    have=$(cat .venv/.requirements.sha256 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        log "Installing Python requirements (torch comes from the local wheel store; a first install takes a few minutes)"
        python -m pip install --disable-pip-version-check -q -r requirements.txt \
            || die "pip install -r requirements.txt failed"
        SAM2_BUILD_CUDA=0 python -m pip install --disable-pip-version-check -q \
            --no-build-isolation -r requirements-sam2.txt \
            || die "pip install -r requirements-sam2.txt failed"
        echo "$want" > .venv/.requirements.sha256
    else
        echo "Python requirements up to date (.venv)."
    fi
}

# .venv-oracles: the dataset readers that the conformance tests run in a subprocess, whose pins
# clash with requirements.txt (tests/datasets/oracles-requirements.txt); pip runs only when that
# file changed. Returns non-zero (and removes the half-made environment, so the tests say it is
# missing) when the install fails.
ensure_oracle_venv() {
    local python=${PYTHON:-python3} requirements=tests/datasets/oracles-requirements.txt
    local want have
    want=$(files_hash "$requirements")
    have=$(cat .venv-oracles/.requirements.sha256 2>/dev/null || true)
    if [ "$want" = "$have" ] && [ -x .venv-oracles/bin/python ]; then
        echo "Oracle readers up to date (.venv-oracles)."
        return 0
    fi
    log "Installing the oracle readers into .venv-oracles ($requirements; a first install takes about two minutes)"
    if [ ! -x .venv-oracles/bin/python ]; then
        "$python" -m venv .venv-oracles || { rm -rf .venv-oracles; return 1; }
    fi
    if ! .venv-oracles/bin/python -m pip install --disable-pip-version-check -q -r "$requirements"; then
        warn "pip install -r $requirements failed: the datumaro conformance tests will skip (fail in CI)"
        rm -rf .venv-oracles
        return 1
    fi
    echo "$want" > .venv-oracles/.requirements.sha256
}

# frontend/node_modules from package-lock.json; npm ci runs only when the lock changed.
ensure_frontend_deps() {
    [ -f frontend/package.json ] || return 0
    command -v npm > /dev/null || die "frontend/package.json exists but npm is not installed (Node.js 20+ needed)"
    local want have
    want=$(files_hash frontend/package.json frontend/package-lock.json)
    have=$(cat frontend/node_modules/.install.sha256 2>/dev/null || true)
    if [ "$want" != "$have" ] || [ ! -d frontend/node_modules ]; then
        log "Installing front-end packages (npm)"
        if [ -f frontend/package-lock.json ]; then
            (cd frontend && npm ci --no-audit --no-fund) || die "npm ci failed in frontend/"
        else
            (cd frontend && npm install --no-audit --no-fund) || die "npm install failed in frontend/"
        fi
        echo "$want" > frontend/node_modules/.install.sha256
    else
        echo "Front-end packages up to date (frontend/node_modules)."
    fi
}

# The front-end build (into static/); skipped when no front-end file changed since the last one.
build_frontend() {
    [ -f frontend/package.json ] || return 0
    ensure_frontend_deps
    local want have stamp=frontend/node_modules/.build.sha256
    want=$(find frontend -path frontend/node_modules -prune -o -type f -print | LC_ALL=C sort \
        | xargs -d '\n' cat | sha256sum | cut -d' ' -f1)
    have=$(cat "$stamp" 2>/dev/null || true)
    if [ "$want" != "$have" ] || [ ! -d static/app ]; then
        log "Building the front end (npm run build)"
        (cd frontend && npm run build) || die "the front-end build failed"
        echo "$want" > "$stamp"
    else
        echo "Front-end build up to date."
    fi
}
