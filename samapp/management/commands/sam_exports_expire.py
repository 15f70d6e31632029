"""``manage.py sam_exports_expire``: delete the exports older than SAM_EXPORT_TTL_HOURS with
their archives (for cron where Celery beat does not run; beat runs the same sweep hourly)."""

from typing import Any

from django.core.management.base import BaseCommand

from samapp.services.datasets.exports import export_jobs_expire


class Command(BaseCommand):
    help = "Delete expired dataset exports and their archives."

    def handle(self, *args: Any, **options: Any) -> None:
        count = export_jobs_expire()
        self.stdout.write(f"{count} expired export(s) deleted.")
