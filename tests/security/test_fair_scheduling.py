"""Fair embedding queues: one project's bulk upload cannot hold back another project's image.

The broker is simulated as what it is, a FIFO of wake-up messages (one per queued row, as
`_enqueue` publishes them), drained by one worker with batches of one image: the worst case
for fairness. Each test counts encoder runs, the unit of a worker's time, so the figures do
not depend on the machine; the latency test also prints seconds with the real (tiny) encoder.
"""

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import torch
from django.utils import timezone

from samapp.choices import EmbeddingStatus
from samapp.ml.embedding import ImageEmbedding
from samapp.models import Embedding
from samapp.services import embeddings as service
from samapp.services.embedding_claims import claim
from samapp.tasks import embedding_compute_task

A_IMAGES = 200


class Worker:
    """One embedding worker taking the broker's messages in order (FIFO), recording which
    rows each encoder run computed."""

    def __init__(self, messages: list[int]) -> None:
        self.messages = messages
        self.runs: list[list[int]] = []

    def step(self) -> None:
        embedding_compute_task(self.messages.pop(0))

    def record(self, rows: list[Embedding]) -> None:
        self.runs.append([row.pk for row in rows])

    def until_ready(self, embedding_id: int) -> int:
        """Encoder runs until `embedding_id` is READY (or the queue is empty)."""
        before = len(self.runs)
        while self.messages and not self.ready(embedding_id):
            self.step()
        assert self.ready(embedding_id), "the queue drained without computing it"
        return len(self.runs) - before

    @staticmethod
    def ready(embedding_id: int) -> bool:
        return Embedding.objects.filter(pk=embedding_id, status=EmbeddingStatus.READY).exists()


def fake_encode(model: Any, images: list[Any]) -> tuple[list[ImageEmbedding], float]:
    """A fast stand-in for the encoder: a zero embedding per image."""
    results = [
        ImageEmbedding(
            embedding=torch.zeros(4, 2, 2),
            input_size=(image.height, image.width),
            original_size=(image.height, image.width),
        )
        for image in images
    ]
    return results, 0.0


@pytest.fixture
def worker(embedding_tasks: list[int], settings: Any) -> Iterator[Worker]:
    """Messages are recorded instead of run eagerly; batches of one image."""
    settings.SAM_EMBEDDING_BATCH_SIZE = 1
    worker = Worker(embedding_tasks)
    compute_rows = service._compute_rows

    def recording(rows: list[Embedding], outcome: Any) -> Any:
        worker.record(rows)
        return compute_rows(rows, outcome)

    with mock.patch.object(service, "_compute_rows", recording):
        yield worker


@pytest.fixture
def fast_encoder() -> Iterator[None]:
    with (
        mock.patch.object(service, "_encode", fake_encode),
        mock.patch.object(service, "model_for_key", return_value=None),
    ):
        yield


@pytest.fixture
def queue(
    make_image: Callable[..., Any], django_capture_on_commit_callbacks: Any
) -> Callable[[Any, int], list[Embedding]]:
    """``queue(project, count)``: `count` new images of `project` with their embeddings
    queued (messages published)."""

    def make(project: Any, count: int) -> list[Embedding]:
        images = [make_image(project, width=16, height=12) for _ in range(count)]
        with django_capture_on_commit_callbacks(execute=True):
            return service.embeddings_schedule(images=images, model_key="sam_tiny")

    return make


@pytest.mark.django_db
def test_one_image_of_project_b_waits_for_at_most_one_run_of_a_bulk_upload_in_a(
    worker, queue, project, other_project
) -> None:
    """The fair-share scenario with the real encoder (sam_tiny): project A queues 200
    images, a worker is on A's first one when B uploads one image; B's embedding is the very
    next one computed, so it is ready within 2 encoder times (3 allowed)."""
    queue(project, A_IMAGES)
    worker.step()  # the encoder is busy on A's first image when B's upload arrives
    encoder_seconds = time.perf_counter()
    worker.step()
    encoder_seconds = time.perf_counter() - encoder_seconds

    started = time.perf_counter()
    (b_row,) = queue(other_project, 1)
    runs = worker.until_ready(b_row.pk)
    seconds = time.perf_counter() - started
    print(
        f"\nB's embedding ready after {runs} encoder run(s), {seconds:.3f} s "
        f"(one encoder run: {encoder_seconds:.3f} s; A still has {len(worker.messages)} "
        f"messages queued)"
    )
    assert runs == 1
    assert worker.runs[-1] == [b_row.pk]
    assert Embedding.objects.filter(status=EmbeddingStatus.READY).count() == 3  # A: 2, B: 1


@pytest.mark.django_db
def test_projects_take_turns_and_every_queued_image_is_computed_once(
    worker, queue, fast_encoder, users, project, other_project
) -> None:
    """Three projects with 30, 5 and 2 pending images: the worker serves them in turn
    (A, B, C, A, B, C, ...) until one runs dry, and draining the broker's messages (one per
    row) computes every row exactly once: no wake-up is lost."""
    from samapp.services.projects import project_create

    third = project_create(name="Third", created_by=users["extra"], labels=[])
    a = queue(project, 30)
    b = queue(other_project, 5)
    c = queue(third, 2)
    owner = {row.pk: name for name, rows in (("A", a), ("B", b), ("C", c)) for row in rows}
    while worker.messages:
        worker.step()
    order = "".join(owner[pk] for run in worker.runs for pk in run)
    print(f"\nservice order: {order}")
    assert order == "ABCABC" + "ABABAB" + "A" * 25
    assert sorted(pk for run in worker.runs for pk in run) == sorted(owner)
    assert set(Embedding.objects.values_list("status", flat=True)) == {EmbeddingStatus.READY}
    assert Embedding.objects.filter(attempts=1).count() == len(owner)


@pytest.mark.django_db
def test_an_image_an_annotator_opens_is_next_whatever_is_queued(
    worker, queue, fast_encoder, users, project, other_project, django_capture_on_commit_callbacks
) -> None:
    """Both projects have bulk uploads queued; an annotator of A opens one of A's images that
    is last in line: it is computed by the next run."""
    queue(other_project, 20)
    rows = queue(project, 20)
    worker.step()
    opened = project.images.get(sha256=rows[-1].image_sha256)
    with django_capture_on_commit_callbacks(execute=True):
        service.embedding_request(image=opened, user=users["annotator"], preencode_next=0)
    assert worker.until_ready(rows[-1].pk) == 1


@pytest.mark.django_db
def test_a_batch_takes_one_image_per_project_before_a_second_of_any(
    worker, queue, fast_encoder, project, other_project, settings
) -> None:
    """With batches of 4, B's single image rides in the first batch after its upload."""
    settings.SAM_EMBEDDING_BATCH_SIZE = 4
    queue(project, 40)
    worker.step()
    (b_row,) = queue(other_project, 1)
    worker.step()
    assert b_row.pk in worker.runs[-1]
    assert len(worker.runs[-1]) == 4


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_worker_is_taken_over_by_whichever_message_comes_next(
    worker, queue, fast_encoder, project, settings
) -> None:
    """Wake-ups are not tied to rows: a worker woken by Y's message that claimed X and died
    leaves X's message to compute Y; Y's redelivered message then finds nothing claimable,
    so it must come back once X's claim is stale (not drop it as done)."""
    x, y = queue(project, 2)
    assert claim([x.pk]) == [x.pk]  # the worker that died
    assert service.embeddings_compute_next().ready == [y.pk]
    retry = service.embeddings_compute_next()
    assert retry.ready == []
    assert 0 < retry.busy_for <= settings.SAM_EMBEDDING_CLAIM_TIMEOUT
    Embedding.objects.filter(pk=x.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.SAM_EMBEDDING_CLAIM_TIMEOUT + 1)
    )
    assert service.embeddings_compute_next().ready == [x.pk]
    assert service.embeddings_compute_next().busy_for is None
