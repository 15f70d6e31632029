"""The embedding queue's claims: which rows a woken worker takes, in what order.

A row is claimed with one conditional UPDATE (pending, or running with a stale claim ->
running), so two workers never hold the same row. Rows are served by priority, then the
project served longest ago (`Project.embeddings_served_at`), then the project's oldest row;
a batch takes one row from each of the first projects in turn (see `samapp.services.embeddings`)."""

import time
from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import F, Max, Min, Q, QuerySet
from django.utils import timezone

from samapp.choices import EmbeddingStatus
from samapp.models import Embedding, Project

if TYPE_CHECKING:
    pass


def claimable(now: Any) -> Q:
    stale = now - timedelta(seconds=settings.SAM_EMBEDDING_CLAIM_TIMEOUT)
    return Q(status=EmbeddingStatus.PENDING) | Q(
        Q(claimed_at__lt=stale) | Q(claimed_at__isnull=True), status=EmbeddingStatus.RUNNING
    )


def claim(ids: list[int]) -> list[int]:
    """Claim each id with one conditional UPDATE; returns those this worker now holds."""
    claimed = []
    for pk in ids:
        now = timezone.now()
        if Embedding.objects.filter(claimable(now), pk=pk).update(
            status=EmbeddingStatus.RUNNING,
            claimed_at=now,
            attempts=F("attempts") + 1,
            updated_at=now,
        ):
            claimed.append(pk)
    return claimed


def release(ids: list[int]) -> None:
    Embedding.objects.filter(pk__in=ids, status=EmbeddingStatus.RUNNING).update(
        status=EmbeddingStatus.PENDING, claimed_at=None
    )


NEVER_SERVED = datetime.min.replace(tzinfo=UTC)


def fair_candidates(*, model_key: str | None, exclude: list[int], limit: int) -> list[int]:
    """Up to `limit` claimable rows in the order workers serve them: projects sorted by their
    most urgent row (priority), then by when they were last served (never first), then by
    their oldest row; the first rows of each of the first `limit` projects interleaved
    round-robin, each project's own rows by priority, then age. Costs 2 + min(projects,
    limit) queries, whatever the number of pending rows."""
    rows = Embedding.objects.filter(claimable(timezone.now())).exclude(pk__in=exclude)
    if model_key is not None:
        rows = rows.filter(model_key=model_key)
    heads = list(rows.values("queued_for").annotate(top=Max("priority"), oldest=Min("id")))
    served = dict(
        Project.objects.filter(
            pk__in=[head["queued_for"] for head in heads if head["queued_for"] is not None]
        ).values_list("pk", "embeddings_served_at")
    )
    heads.sort(
        key=lambda head: (
            -head["top"],
            served.get(head["queued_for"]) or NEVER_SERVED,
            head["oldest"],
        )
    )
    per_project = [
        list(
            rows.filter(queued_for=head["queued_for"])
            .order_by("-priority", "id")
            .values_list("pk", flat=True)[:limit]
        )
        for head in heads[:limit]
    ]
    turns = [pk for turn in zip_longest(*per_project) for pk in turn if pk is not None]
    return turns[:limit]


def claim_fair(*, model_key: str | None, claimed: list[int], limit: int) -> list[int]:
    """Claim up to `limit` more rows in fair order (another worker may win some: the next
    candidates are taken then); returns the ids claimed."""
    taken: list[int] = []
    while len(taken) < limit:
        candidates = fair_candidates(
            model_key=model_key, exclude=claimed + taken, limit=limit - len(taken)
        )
        if not candidates:
            break
        won = claim(candidates)
        taken += won
        if model_key is None and won:
            break  # the first row fixes the batch's model
    return taken


def gather(*, first: list[int], model_key: str, batch_size: int, wait_seconds: float) -> list[int]:
    """Fill a batch started with the claimed rows `first` (of `model_key`) in fair order,
    waiting up to `wait_seconds` for more rows to arrive; marks the projects served."""
    claimed = list(first)
    deadline = time.monotonic() + wait_seconds
    while len(claimed) < batch_size:
        claimed += claim_fair(model_key=model_key, claimed=claimed, limit=batch_size - len(claimed))
        if len(claimed) >= batch_size or time.monotonic() >= deadline:
            break
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    served = Embedding.objects.filter(pk__in=claimed, queued_for__isnull=False)
    Project.objects.filter(pk__in=served.values("queued_for")).update(
        embeddings_served_at=timezone.now()
    )
    return claimed


def busy_for(rows: QuerySet[Embedding]) -> float | None:
    """Seconds until the oldest live claim among `rows` goes stale (its worker may have died:
    then it is claimable again); None when none of them is claimed."""
    oldest = rows.filter(status=EmbeddingStatus.RUNNING).aggregate(at=Min("claimed_at"))["at"]
    if oldest is None:
        return None
    age: float = (timezone.now() - oldest).total_seconds()
    timeout: float = settings.SAM_EMBEDDING_CLAIM_TIMEOUT
    return max(0.0, timeout - age)
