"""The annotation change log: every change gets a per-project sequence number, recorded in the
same transaction as the change and broadcast once after commit, so a client that reconnects
can ask for everything after the last `seq` it saw and lose nothing."""

from typing import cast

from django.db import transaction

from samapp.models import AnnotationEvent, Project
from samapp.realtime.contract import P, ServerEvent
from samapp.realtime.events import broadcast_many


def project_lock(*, project_id: int) -> None:
    """Serialize the project's annotation writes until commit (a row lock on Postgres; SQLite's
    IMMEDIATE transactions already serialize writers). Take it first, before any annotation
    row lock, so every writer locks in the same order."""
    list(
        Project.objects.select_for_update()
        .filter(pk=project_id)
        .order_by()
        .values_list("pk", flat=True)
    )


def _seq_take(*, project_id: int, count: int) -> int:
    """Allocate the project's next `count` seqs (one UPDATE, which also holds the project row
    until commit); returns the last of them."""
    connection = transaction.get_connection()
    table = connection.ops.quote_name(Project._meta.db_table)
    # UPDATE … RETURNING (Postgres, SQLite ≥ 3.35): the ORM's update() returns no values. The
    # table name is the model's, quoted; the values are parameters.
    sql = f"UPDATE {table} SET annotation_seq = annotation_seq + %s WHERE id = %s RETURNING annotation_seq"  # noqa: E501, S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, project_id])
        row = cursor.fetchone()
    if row is None:
        raise Project.DoesNotExist(f"No project {project_id}.")
    return int(row[0])


def annotation_seqs_reserve(*, project_id: int, count: int = 1) -> range:
    """`project_lock` and the allocation of the project's next `count` seqs in one statement:
    for a write that knows how many events it will record. Take it first in the transaction,
    as `project_lock`; hand the seqs to `annotation_events_record`."""
    assert transaction.get_connection().in_atomic_block, "reserve inside the change's transaction"
    last = _seq_take(project_id=project_id, count=count)
    return range(last - count + 1, last + 1)


def annotation_events_record(
    *, project_id: int, events: list[tuple[ServerEvent[P], P]], seqs: range | None = None
) -> list[int]:
    """Append `events` to the project's log with consecutive seqs (inside the caller's
    transaction, after `project_lock`, or with the `seqs` of `annotation_seqs_reserve`) and
    broadcast them in order once it commits."""
    assert transaction.get_connection().in_atomic_block, "record inside the change's transaction"
    if seqs is None:
        if not events:
            return []
        seqs = annotation_seqs_reserve(project_id=project_id, count=len(events))
    elif len(seqs) != len(events):
        raise ValueError(f"{len(seqs)} seqs reserved for {len(events)} events.")
    bodies = [
        (event, cast(P, {**payload, "seq": seq}))
        for seq, (event, payload) in zip(seqs, events, strict=True)
    ]
    AnnotationEvent.objects.bulk_create(
        AnnotationEvent(project_id=project_id, seq=seq, event=str(event), payload=body)
        for seq, (event, body) in zip(seqs, bodies, strict=True)
    )

    transaction.on_commit(lambda: broadcast_many(project_id=project_id, events=bodies))
    return list(seqs)


def annotation_event_record(
    *, project_id: int, event: ServerEvent[P], payload: P, seq: int | None = None
) -> int:
    """`annotation_events_record` of one event (at `seq` if reserved): its seq."""
    seqs = None if seq is None else range(seq, seq + 1)
    return annotation_events_record(project_id=project_id, events=[(event, payload)], seqs=seqs)[0]
