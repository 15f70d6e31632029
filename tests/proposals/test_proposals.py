"""Semi-automatic proposals: confidence/overlap filters, nearest-example labels, idempotence."""

from typing import Any

import pytest

from samapp.choices import ReviewState
from samapp.models import Annotation
from tests.conftest import rle_box

pytestmark = pytest.mark.django_db


def record(box: tuple[int, int, int, int], iou: float) -> dict[str, Any]:
    return {
        "segmentation": rle_box(64, 64, box),
        "predicted_iou": iou,
        "stability_score": 0.97,
        "point_coords": [[box[0] + 1, box[1] + 1]],
    }


@pytest.fixture
def generated(monkeypatch) -> list[dict[str, Any]]:
    records = [
        record((0, 0, 32, 32), 0.99),  # already annotated: dropped
        record((32, 32, 64, 64), 0.95),  # new: proposed
        record((33, 33, 64, 64), 0.90),  # the same object again, less sure: dropped
    ]
    calls: list[dict[str, Any]] = []

    def fake(model, image, embedding, **kwargs):
        calls.append(kwargs)
        return records

    monkeypatch.setattr("samapp.ml.automatic.generate_masks", fake)
    return calls


def test_proposals_skip_annotated_objects_and_take_the_nearest_label(
    project, users, make_image, make_annotation, generated
) -> None:
    from samapp.services.proposals import ProposalOptions, proposals_generate

    cat = project.labels.get(name="cat")
    image = make_image(project, width=64, height=64)
    make_annotation(image, label=cat, box=(0, 0, 32, 32))
    options = ProposalOptions(min_label_similarity=-1.0, pred_iou_thresh=0.9)
    created = proposals_generate(image=image, user=users["annotator"], options=options)
    assert generated[0]["pred_iou_thresh"] == 0.9
    assert [a.bbox for a in created] == [[32, 32, 32, 32]]
    proposal = created[0]
    assert proposal.review_state == ReviewState.PROPOSED
    assert proposal.source == "automatic"
    assert proposal.label == cat
    assert proposal.model_key == "sam_tiny"
    assert -1 <= proposal.prompts["proposal"]["label_similarity"] <= 1
    # Again: the unreviewed proposal is replaced, not duplicated; too dissimilar -> unlabelled.
    strict = ProposalOptions(min_label_similarity=1.01)
    (again,) = proposals_generate(image=image, user=users["annotator"], options=strict)
    assert again.label is None
    assert Annotation.objects.filter(image=image, review_state="proposed").count() == 1


def test_proposals_run_reports_progress(project, users, make_image, generated, monkeypatch) -> None:
    from samapp.services.proposals import proposals_run

    events: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "samapp.services.proposals.broadcast", lambda **kwargs: events.append(kwargs)
    )
    images = [make_image(project, width=64, height=64) for _ in range(2)]
    total = proposals_run(
        project_id=project.pk,
        image_ids=[i.pk for i in images],
        user_id=users["annotator"].pk,
        options={"max_overlap": 0.5},
    )
    assert total == 4  # two objects per image (the third overlaps the second)
    assert [e["payload"]["progress"] for e in events] == [0.5, 1.0]
    assert events[-1]["payload"]["state"] == "done"
    assert events[-1]["event"] == "job.progress"
