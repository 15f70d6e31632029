"""Embedded default: SQLite, in-memory channel layer, spool-directory broker, local files."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
