"""The annotation change log: every change gets a per-project sequence number, recorded in the
same transaction as the change and broadcast once after commit, so a client that reconnects
can ask for everything after the last `seq` it saw and lose nothing."""

from typing import cast

from django.db import transaction
from django.db.models import Max

from samapp.models import AnnotationEvent, Project
from samapp.realtime.contract import P, ServerEvent
from samapp.realtime.events import broadcast


def project_lock(*, project_id: int) -> None:
    """Serialize the project's annotation writes until commit (a row lock on Postgres; SQLite's
    IMMEDIATE transactions already serialize writers). Take it first, before any annotation
    row lock, so every writer locks in the same order."""
    list(Project.objects.select_for_update().filter(pk=project_id).values_list("pk", flat=True))


def annotation_event_record(*, project_id: int, event: ServerEvent[P], payload: P) -> int:
    """Append `event` to the project's log (inside the caller's transaction, after
    `project_lock`) and broadcast it with its `seq` once the transaction commits."""
    assert transaction.get_connection().in_atomic_block, "record inside the change's transaction"
    project_lock(project_id=project_id)  # no-op when the caller already holds it
    last = AnnotationEvent.objects.filter(project_id=project_id).aggregate(m=Max("seq"))["m"]
    seq = (last or 0) + 1
    body = cast(P, {**payload, "seq": seq})
    AnnotationEvent.objects.create(project_id=project_id, seq=seq, event=str(event), payload=body)
    transaction.on_commit(lambda: broadcast(project_id=project_id, event=event, payload=body))
    return seq
