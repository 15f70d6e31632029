# SAM Studio's Python image (web server and Celery workers; see docker-compose.yml).
# torch==2.14.1 from PyPI is the CUDA build: the same image runs the GPU worker.

# ---- front end (Vite) -> /src/static/app
FROM node:20-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# ---- Python app
FROM python:3.11-slim AS app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=backend.settings.production \
    SAM_DATA_DIR=/data
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 sam \
    && mkdir -p /data && chown sam:sam /data
WORKDIR /app
COPY requirements.txt requirements-sam2.txt ./
RUN pip install -r requirements.txt \
    && SAM2_BUILD_CUDA=0 pip install --no-build-isolation -r requirements-sam2.txt
COPY . .
COPY --from=frontend /src/static/app ./static/app
# Static files are collected at build time; the settings need these values, not real ones.
ENV DJANGO_STATIC_ROOT=/app/staticfiles
RUN DJANGO_SECRET_KEY=build-only-not-secret DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 SAM_DATA_DIR=/tmp/build \
    python manage.py collectstatic --noinput -v0 && rm -rf /tmp/build
USER sam
VOLUME ["/data"]
EXPOSE 8000
# Several ASGI worker processes (WEB_WORKERS): Django runs sync views on one thread per
# process, so one process serializes every API write of a team.
CMD ["sh", "-c", "exec uvicorn backend.asgi:application --host 0.0.0.0 --port 8000 --workers ${WEB_WORKERS:-2} --proxy-headers --forwarded-allow-ips='*' --no-server-header"]

# ---- reverse proxy (Caddy): serves the collected static files, balances / and /ws/ over the
# web replicas. Built with `--target proxy`; docker-compose.yml does.
FROM caddy:2-alpine AS proxy
COPY --from=app /app/staticfiles /srv/static

# ---- the default target: the Python app image
FROM app
