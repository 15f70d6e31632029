"""Settings shared by every profile; values come from the environment (django-environ)."""

from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE, WASM_UNSAFE_EVAL
from django.core.exceptions import ImproperlyConfigured

# Lets admin and DRF generics be subscripted at run time, as the type stubs declare them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Everything the app writes (SQLite file, media, embeddings, checkpoints, broker spool).
DATA_DIR = Path(env("SAM_DATA_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "channels",
    "axes",
    "samapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before whitenoise, so static files (the decoder's worker scripts) carry the policy too.
    "csp.middleware.CSPMiddleware",
    "samapp.middleware.CrossOriginIsolationMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused by the lockout into a 429 (token endpoint included).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"
ASGI_APPLICATION = "backend.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "samapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process and the local worker write side by side.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Login brute force: django-axes counts failures per (username, client IP) in the database;
# at AXES_FAILURE_LIMIT the pair is locked out for AXES_COOLOFF_TIME hours (429), and a
# success resets the count. Behind a proxy the IP is the proxy's unless AXES_IPWARE_*
# settings say which header carries the client's.
AUTHENTICATION_BACKENDS = [
    "samapp.auth_backends.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_TIME", default=0.25)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"

# Self sign-up at /accounts/signup/ (samapp.services.accounts): "open" (anyone), "invite"
# (only an e-mail address a project has a pending invitation for) or "closed" (staff create
# accounts in the admin). The embedded profile opens it; a server defaults to invitations.
SAM_SIGNUP = env("SAM_SIGNUP", default="invite")
# Sign-up attempts per client IP address (a DRF throttle rate, "N/second|minute|hour|day").
SAM_SIGNUP_RATE = env("SAM_SIGNUP_RATE", default="10/hour")


def check_signup_mode(mode: str) -> str:
    if mode not in ("open", "invite", "closed"):
        raise ImproperlyConfigured(f"SAM_SIGNUP must be open, invite or closed, not {mode!r}.")
    return mode


SAM_SIGNUP = check_signup_mode(SAM_SIGNUP)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"  # never routed: files go out through permission-checked views

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": [
        "samapp.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "samapp.api.authentication.ApiTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "samapp.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "samapp.api.errors.exception_handler",
}

# API tokens (django-rest-knox, hashed at rest): every login at /api/auth/token/ issues a new
# token that expires SAM_TOKEN_TTL hours later (no sliding renewal); a user keeps at most
# SAM_TOKEN_LIMIT_PER_USER live tokens, the oldest being revoked past that. Tokens are revoked
# by logout, by their owner (one or all), on a password change and on deactivation.
KNOX_TOKEN_MODEL = "samapp.ApiToken"  # noqa: S105 (a model name)
SAM_TOKEN_TTL = env.float("SAM_TOKEN_TTL", default=7 * 24.0)  # hours
SAM_TOKEN_LIMIT_PER_USER = env.int("SAM_TOKEN_LIMIT_PER_USER", default=20)
if SAM_TOKEN_TTL <= 0 or SAM_TOKEN_LIMIT_PER_USER < 1:
    raise ImproperlyConfigured("SAM_TOKEN_TTL must be > 0 hours, SAM_TOKEN_LIMIT_PER_USER >= 1.")
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=SAM_TOKEN_TTL),
    # A recognisable prefix lets secret scanners find leaked tokens.
    "TOKEN_PREFIX": "sam_",
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SAM Studio API",
    "DESCRIPTION": "Team image annotation with Segment Anything.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files (drf-spectacular-sidecar), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Named once: the annotation's review states, and the two a review decision sets.
    "ENUM_NAME_OVERRIDES": {
        "ReviewStateEnum": "samapp.choices.ReviewState",
        "ReviewDecisionEnum": ["accepted", "rejected"],
    },
}
# /api/schema/ and /api/docs/ for anyone, or only for signed-in users (production's default).
SAM_API_DOCS_PUBLIC = env.bool("SAM_API_DOCS_PUBLIC", default=True)

# Cross-origin isolation (multi-threaded WASM needs SharedArrayBuffer): Django's
# SecurityMiddleware sends COOP, samapp.middleware the COEP and CORP that Django does not.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy on every response (django-csp): scripts only from this origin, and
# WebAssembly compilation for the browser decoder (onnxruntime-web) in its workers; style
# elements only from files or with the response's nonce. Style attributes stay allowed: lit
# templates colour label swatches with them, and an attribute cannot run script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, WASM_UNSAFE_EVAL],
        "worker-src": [SELF, "blob:"],
        "style-src": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Channels: in-memory layer unless Redis is configured.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's pool refuses a command past `max_connections` (100 by default)
                # instead of waiting: 200 sockets connecting at once to one web process (each
                # joins its groups and announces itself) failed with "Too many connections".
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # redis-py 8 reads with a 5 s socket timeout by default, the same as
                        # channels_redis' blocking BZPOPMIN: idle sockets died with "Timeout
                        # reading". Give reads room.
                        "socket_timeout": 30,
                        "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=1000),
                    }
                ],
                # Per-socket backlog. The default (100) drops room broadcasts silently when 50
                # annotators write at once (bench/api_load.py); clients then need catch_up.
                "capacity": 1000,
                # Deployments (or test runs) that share one Redis keep their rooms apart.
                "prefix": env("CHANNEL_LAYER_PREFIX", default="asgi"),
            },
        }
    }
else:
    # In-memory in this process, bridged to the local worker's processes through a spool
    # directory (samapp.realtime.layers): the embedded default needs no server.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "samapp.realtime.layers.SpoolChannelLayer",
            "CONFIG": {"spool_dir": str(DATA_DIR / "channels")},
        }
    }

# Open websockets re-check their user, credential (session or token) and membership every
# SAM_SOCKET_RECHECK_SECONDS (and when their token expires); revocations close them at once.
SAM_SOCKET_RECHECK_SECONDS = env.float("SAM_SOCKET_RECHECK_SECONDS", default=60.0)
if SAM_SOCKET_RECHECK_SECONDS <= 0:
    raise ImproperlyConfigured("SAM_SOCKET_RECHECK_SECONDS must be > 0.")
# Back-pressure and ordering of the project sockets (samapp.realtime): frames queued to one
# client at most (a client that falls further behind is closed and catches up when it
# reconnects, instead of holding the server's memory or slowing the others); how long a room
# waits for a late broadcast before reading a missing seq from the log; the shortest interval
# between two catch-up pages served to one socket.
SAM_SOCKET_SEND_QUEUE = env.int("SAM_SOCKET_SEND_QUEUE", default=512)
SAM_SOCKET_GAP_WAIT = env.float("SAM_SOCKET_GAP_WAIT", default=0.1)
SAM_SOCKET_CATCH_UP_INTERVAL = env.float("SAM_SOCKET_CATCH_UP_INTERVAL", default=0.2)
# Annotation log events per channel-layer message when a change records several (a label
# deleted with its annotations): the sender's cost is per message, and a message holds whole
# annotations.
SAM_BROADCAST_BATCH = env.int("SAM_BROADCAST_BATCH", default=100)
if SAM_BROADCAST_BATCH < 1:
    raise ImproperlyConfigured("SAM_BROADCAST_BATCH must be >= 1.")

# The cache holds DRF's throttle counts: shared through Redis by every web process when
# there is one, else per process (the embedded profile has one).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "samstudio",
        }
    }

# Celery: a broker that needs no server (a spool directory) unless one is configured.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_SPOOL = DATA_DIR / "broker"
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(CELERY_BROKER_SPOOL),
        "data_folder_out": str(CELERY_BROKER_SPOOL),
        "control_folder": str(DATA_DIR / "broker-control"),
        # kombu polls the spool once a second by default: a second of latency per task.
        "polling_interval": env.float("CELERY_FS_POLLING_INTERVAL", default=0.05),
    }
else:
    # Above the longest job, so a slow job is not handed to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600)
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Embeddings never share a queue with the long jobs (segment everything, proposals,
# training, exports, decoder exports: "default"), and every worker setup gives the
# "embeddings" queue a process of its own, so a long job cannot hold back an upload.
CELERY_TASK_ROUTES = {"samapp.tasks.embedding_*": {"queue": "embeddings"}}
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# `celery beat` (a service of its own in docker-compose.yml, `-B` on the local jobs worker).
CELERY_BEAT_SCHEDULE = {
    "exports-expire": {"task": "samapp.tasks.exports_expire_task", "schedule": 3600.0},
}

# SAM
# The model of new projects: a registry key, or "auto": the first present model of
# SAM_AUTO_MODELS (downloaded at start-up by `manage.py sam_models_prepare` when the network
# allows), else the bundled offline demo model sam_tiny.
SAM_DEFAULT_MODEL = env("SAM_DEFAULT_MODEL", default="auto")
SAM_AUTO_MODELS = env.list("SAM_AUTO_MODELS", default=["mobile_sam"])
# A mirror holding the checkpoints under their official file names (default: official URLs).
SAM_DOWNLOAD_BASE_URL = env("SAM_DOWNLOAD_BASE_URL", default="")
# Seconds to wait for the download host's connection: an offline start falls back fast.
SAM_DOWNLOAD_CONNECT_TIMEOUT = env.float("SAM_DOWNLOAD_CONNECT_TIMEOUT", default=3.0)
SAM_CHECKPOINT_DIR = Path(env("SAM_CHECKPOINT_DIR", default=str(DATA_DIR / "checkpoints")))
SAM_DEVICE = env("SAM_DEVICE", default="auto")
# Keep random weights when a checkpoint is missing (tests, demos without the file only); they are
# seeded, so the web process and every worker draw the same ones.
SAM_RANDOM_INIT_FALLBACK = env.bool("SAM_RANDOM_INIT_FALLBACK", default=False)
# Embedding workers claim up to BATCH_SIZE pending images and encode them in one forward,
# waiting up to BATCH_WAIT seconds for a batch to fill; a RUNNING claim older than
# CLAIM_TIMEOUT seconds (a crashed worker) is claimed again.
SAM_EMBEDDING_BATCH_SIZE = env.int("SAM_EMBEDDING_BATCH_SIZE", default=4)
SAM_EMBEDDING_BATCH_WAIT = env.float("SAM_EMBEDDING_BATCH_WAIT", default=0.0)
SAM_EMBEDDING_CLAIM_TIMEOUT = env.float("SAM_EMBEDDING_CLAIM_TIMEOUT", default=600.0)
SAM_EMBEDDING_MAX_ATTEMPTS = env.int("SAM_EMBEDDING_MAX_ATTEMPTS", default=3)
# Test hook only: seconds a worker sleeps after its first claim (to kill it mid-task).
SAM_EMBEDDING_TEST_DELAY = env.float("SAM_EMBEDDING_TEST_DELAY", default=0.0)
# How many of an annotator's next assigned images are encoded ahead when one is opened.
SAM_PREENCODE_NEXT = env.int("SAM_PREENCODE_NEXT", default=3)
# One embedding per (content, model) for every project holding that content (each image is
# encoded once on the whole server), or one per project: then uploading bytes that another
# tenant holds does not answer "ready" at once. Off in the production profile.
SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS = env.bool(
    "SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS", default=True
)

# Quotas on the jobs members start (HTTP 429 past them). A job counts while queued or
# running, until it has not moved for SAM_JOB_STALE_SECONDS (a worker lost mid-job).
SAM_MAX_ACTIVE_JOBS_PER_PROJECT = env.int("SAM_MAX_ACTIVE_JOBS_PER_PROJECT", default=4)
SAM_MAX_ACTIVE_JOBS_PER_USER = env.int("SAM_MAX_ACTIVE_JOBS_PER_USER", default=2)
SAM_JOB_STALE_SECONDS = env.int("SAM_JOB_STALE_SECONDS", default=6 * 3600)
# Largest fine-tuning job (optimisation steps) and proposals run (images x points per side²).
SAM_MAX_TRAINING_STEPS = env.int("SAM_MAX_TRAINING_STEPS", default=5000)
SAM_MAX_PROPOSAL_POINTS = env.int("SAM_MAX_PROPOSAL_POINTS", default=200 * 32 * 32)

# Exports: archives are deleted SAM_EXPORT_TTL_HOURS after their creation (a periodic
# `manage.py sam_exports_expire` or Celery beat, and a sweep whenever exports are listed);
# each user may start SAM_EXPORT_RATE of them (DRF throttle rate: "N/second|minute|hour|day").
SAM_EXPORT_TTL_HOURS = env.float("SAM_EXPORT_TTL_HOURS", default=24.0)
SAM_EXPORT_RATE = env("SAM_EXPORT_RATE", default="10/hour")
# Browser decoders exported per model (samapp.ml.onnx_export.DECODER_VARIANTS names). The
# default: fast_multi_int8up_tanh where it passes its parity probe (ViT models; ~20% faster
# clicks than fast_multi), else fast_multi (prepare once per image, then ~2x faster clicks),
# with lowres_multi for clicks that refine a mask.
SAM_DECODER_VARIANTS = env.list(
    "SAM_DECODER_VARIANTS",
    default=[
        "fast_multi_int8up_tanh",
        "fast_multi",
        "lowres_multi",
        "lowres_multi_int8",
        "official_multi",
        "official_single",
    ],
)
SAM_DECODER_DEFAULT_VARIANT = env("SAM_DECODER_DEFAULT_VARIANT", default="fast_multi_int8up_tanh")
# SAM 2.1's browser decoders (samapp.ml.sam2_onnx.SAM2_VARIANTS names). Exact graphs by
# default: `fast_multi` (per-image prepare + per-click graph, the browser's pick) and
# `lowres_multi` (its clicks that refine a mask). The int8 single graph passes its probe on
# random features but measured IoU 0.966 against SAM2ImagePredictor on real clicks
# (docs/models.md); adding `lowres_multi_int8` exports it too, and the browser takes it only
# where `fast_multi` is absent.
SAM2_DECODER_VARIANTS = env.list("SAM2_DECODER_VARIANTS", default=["fast_multi", "lowres_multi"])

# Object storage (S3-compatible: AWS, MinIO...) when a bucket is named; local disk otherwise.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
    AWS_ACCESS_KEY_ID = env("AWS_ACCESS_KEY_ID", default=None)
    AWS_SECRET_ACCESS_KEY = env("AWS_SECRET_ACCESS_KEY", default=None)
    AWS_DEFAULT_ACL = None
    AWS_S3_FILE_OVERWRITE = True
    AWS_QUERYSTRING_AUTH = True
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage"}

# Upload limits
SAM_MAX_UPLOAD_BYTES = env.int("SAM_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
SAM_MAX_IMAGE_PIXELS = env.int("SAM_MAX_IMAGE_PIXELS", default=50_000_000)
SAM_MAX_ARCHIVE_ENTRIES = env.int("SAM_MAX_ARCHIVE_ENTRIES", default=10_000)
SAM_MAX_ARCHIVE_TOTAL_BYTES = env.int("SAM_MAX_ARCHIVE_TOTAL_BYTES", default=2 * 1024**3)
SAM_MAX_ARCHIVE_RATIO = env.int("SAM_MAX_ARCHIVE_RATIO", default=100)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# JSON request bodies: bytes and levels of nested arrays/objects (400 beyond either).
SAM_MAX_JSON_BODY_BYTES = env.int("SAM_MAX_JSON_BODY_BYTES", default=DATA_UPLOAD_MAX_MEMORY_SIZE)
SAM_MAX_JSON_DEPTH = env.int("SAM_MAX_JSON_DEPTH", default=32)
# Chunked (resumable) uploads: files bigger than one request may carry. Every chunk but the last
# is exactly SAM_UPLOAD_CHUNK_BYTES (below DATA_UPLOAD_MAX_MEMORY_SIZE); a user holds at most
# SAM_UPLOAD_MAX_OPEN sessions declaring SAM_UPLOAD_MAX_PENDING_BYTES in all; a session untouched
# for SAM_UPLOAD_EXPIRY_SECONDS is abandoned and deleted with its chunks.
SAM_UPLOAD_CHUNK_BYTES = env.int("SAM_UPLOAD_CHUNK_BYTES", default=8 * 1024 * 1024)
SAM_UPLOAD_MAX_BYTES = env.int("SAM_UPLOAD_MAX_BYTES", default=SAM_MAX_ARCHIVE_TOTAL_BYTES)
SAM_UPLOAD_MAX_OPEN = env.int("SAM_UPLOAD_MAX_OPEN", default=20)
SAM_UPLOAD_MAX_PENDING_BYTES = env.int("SAM_UPLOAD_MAX_PENDING_BYTES", default=4 * 1024**3)
SAM_UPLOAD_EXPIRY_SECONDS = env.int("SAM_UPLOAD_EXPIRY_SECONDS", default=24 * 3600)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}
