"""Test profile: the embedded default, isolated in a temporary data directory."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import check_signup_mode, env

DATA_DIR = Path(env("SAM_DATA_DIR", default=tempfile.mkdtemp(prefix="samstudio-test-")))
MEDIA_ROOT = DATA_DIR / "media"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# As the embedded profile; tests that need another mode override it.
SAM_SIGNUP = check_signup_mode(env("SAM_SIGNUP", default="open"))
