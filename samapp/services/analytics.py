"""Analytics exports (the numbers are computed by `samapp.selectors.analytics`)."""

import csv
import io

from samapp.models import Project
from samapp.selectors.analytics import IDLE_SECONDS, annotation_analytics

CSV_COLUMNS = (
    "annotator_id",
    "annotator",
    "label_id",
    "label",
    "objects",
    "objects_per_hour",
    "seconds_per_object",
    "clicks_per_object",
    "accepted_unchanged_share",
    "timed_objects",
    "active_seconds",
)


def _cell(value: object) -> object:
    # A spreadsheet must not run a cell as a formula (CSV injection through user names).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def analytics_csv_export(*, project: Project, idle_seconds: float = IDLE_SECONDS) -> str:
    """The per-annotator, per-label analytics of `project` as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in annotation_analytics(project=project, idle_seconds=idle_seconds):
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return buffer.getvalue()
