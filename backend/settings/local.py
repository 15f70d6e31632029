"""Embedded default: SQLite, in-memory channel layer, spool-directory broker, local files.

DEBUG stays off (base) unless DJANGO_DEBUG=1: its error pages show settings and tracebacks to
whoever triggers them.

Everything this profile writes under DATA_DIR (the SQLite database with password hashes,
session keys and tokens; media; embeddings; checkpoints; the broker and channel spools) is
private to the account running it: the process creates files 0600 and folders 0700."""

import os

from .base import *  # noqa: F403
from .base import DATA_DIR, DATABASES, check_signup_mode, env

os.umask(0o077)
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# A folder and database made before the umask (an older install) are closed here too.
if DATA_DIR.stat().st_uid == os.getuid():
    DATA_DIR.chmod(0o700)
_database = DATABASES["default"]
if _database["ENGINE"] == "django.db.backends.sqlite3" and os.path.isfile(_database["NAME"]):
    os.chmod(_database["NAME"], 0o600)

# One person on their own machine: anyone who reaches it may make an account.
SAM_SIGNUP = check_signup_mode(env("SAM_SIGNUP", default="open"))
