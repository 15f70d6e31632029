"""``manage.py sam_purge_uploads``: delete abandoned chunked uploads and their chunks.

Opening a session already deletes a bounded batch of expired ones; run this from cron where
uploads are rare, so that abandoned chunks never wait for the next upload."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from samapp.services.chunked_uploads import upload_sessions_purge_expired


class Command(BaseCommand):
    help = "Delete chunked uploads untouched for SAM_UPLOAD_EXPIRY_SECONDS, with their chunks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch", type=int, default=500, help="sessions deleted per query (default 500)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch = max(1, options["batch"])
        total = 0
        while deleted := upload_sessions_purge_expired(limit=batch):
            total += deleted
        self.stdout.write(f"{total} abandoned upload(s) deleted.")
