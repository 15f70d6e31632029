"""Embedded default: SQLite, in-memory channel layer, spool-directory broker, local files.

DEBUG stays off (base) unless DJANGO_DEBUG=1: its error pages show settings and tracebacks to
whoever triggers them."""

from .base import *  # noqa: F403
