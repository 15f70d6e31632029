"""Review and membership rules at the service level: what a member's write becomes, who may
review, what a review decision records, and the invitation life cycle."""

from typing import Any

import pytest

from samapp.choices import ReviewState
from samapp.errors import ApplicationError, PermissionDeniedError
from samapp.models import Annotation, AnnotationEvent, Invitation, Membership
from samapp.roles import IMAGE_TRANSITIONS, Capability, role_can_move_image
from samapp.services.annotations import annotation_create, annotation_update
from samapp.services.invitations import invitation_accept, invitation_create
from samapp.services.reviews import annotations_review
from tests.conftest import rle_box


def member(project: Any, user: Any) -> Membership:
    return Membership.objects.select_related("project", "user").get(project=project, user=user)


@pytest.fixture
def image(project: Any, make_image: Any) -> Any:
    return make_image(project, width=8, height=6)


def submit(image: Any, user: Any, **fields: Any) -> Annotation:
    return annotation_create(
        image=image,
        author=user,
        rle=rle_box(6, 8),
        actor=member(image.project, user),
        **fields,
    )


def test_server_writes_keep_their_fields_and_members_follow_the_rules(image, users) -> None:
    job = annotation_create(
        image=image,
        author=users["annotator"],
        rle=rle_box(6, 8),
        source="automatic",
        model_key="sam_tiny",
        predicted_iou=0.9,
        review_state=ReviewState.PROPOSED,
    )
    assert (job.source, job.review_state) == ("automatic", "proposed")
    image.refresh_from_db()
    assert image.status == "new"  # a job's proposal does not start the image
    with pytest.raises(ApplicationError):
        submit(image, users["annotator"], source="automatic")
    with pytest.raises(PermissionDeniedError):
        submit(image, users["annotator"], review_state=ReviewState.ACCEPTED)
    with pytest.raises(PermissionDeniedError):
        submit(image, users["viewer"])
    own = submit(image, users["annotator"])
    assert own.review_state == ReviewState.PROPOSED
    image.refresh_from_db()
    assert image.status == "in_progress"


def test_a_reviewer_decision_is_recorded_and_an_edit_by_the_author_clears_it(image, users) -> None:
    own = submit(image, users["annotator"])
    reviewed = annotation_update(
        annotation=own,
        expected_version=1,
        data={"review_state": "rejected", "review_reason": "too loose"},
        actor=member(image.project, users["reviewer"]),
    )
    assert (reviewed.review_reason, reviewed.reviewed_by) == ("too loose", users["reviewer"])
    assert reviewed.reviewed_at is not None
    fixed = annotation_update(
        annotation=reviewed,
        expected_version=2,
        data={"rle": rle_box(6, 8, (0, 0, 3, 3))},
        actor=member(image.project, users["annotator"]),
    )
    assert (fixed.review_state, fixed.review_reason, fixed.reviewed_by) == ("proposed", "", None)


def test_bulk_review_records_reason_and_reviewer_and_reopens_done_images(
    project, make_image, make_annotation, users
) -> None:
    done = make_image(project, status="done")
    annotation = make_annotation(done, review_state="proposed")
    result = annotations_review(
        project=project,
        ids=[annotation.id],
        review_state="rejected",
        reason="wrong label",
        reviewer=users["reviewer"],
    )
    assert result["updated"] == [annotation.id]
    annotation.refresh_from_db()
    assert (annotation.review_reason, annotation.reviewed_by) == ("wrong label", users["reviewer"])
    done.refresh_from_db()
    assert done.status == "in_progress"
    event = AnnotationEvent.objects.filter(event="annotations.reviewed").get()
    assert event.payload["review_reason"] == "wrong label"
    assert event.payload["reviewed_by"] == users["reviewer"].pk
    assert event.payload["reviewed_at"] == annotation.reviewed_at.isoformat()
    assert event.payload["annotations"] == [
        {"id": annotation.id, "image": done.id, "version": annotation.version}
    ]
    # the same decision again changes nothing; a new reason is a change
    again = annotations_review(
        project=project, ids=[annotation.id], review_state="rejected", reason="wrong label"
    )
    assert again["unchanged"] == [annotation.id]
    with pytest.raises(ApplicationError):
        annotations_review(
            project=project, ids=[annotation.id], review_state="rejected", reason="x" * 1001
        )


def test_transition_table_never_lets_an_annotator_touch_reviewed_images() -> None:
    assert not any("reviewed" in pair for pair in IMAGE_TRANSITIONS[Capability.ANNOTATE])
    for status in ("new", "in_progress", "done"):
        assert not role_can_move_image("annotator", "reviewed", status)
        assert role_can_move_image("manager", "reviewed", status)
    assert not role_can_move_image("viewer", "new", "in_progress")
    assert role_can_move_image("viewer", "new", "new")


def test_invitation_life_cycle(project, users, django_user_model) -> None:
    newcomer = django_user_model.objects.create_user(username="newcomer", password="x")
    manager = member(project, users["manager"])
    with pytest.raises(PermissionDeniedError):
        invitation_create(project=project, identifier="newcomer", role="owner", inviter=manager)
    with pytest.raises(PermissionDeniedError):
        invitation_create(
            project=project,
            identifier="newcomer",
            role="viewer",
            inviter=member(project, users["annotator"]),
        )
    invitation_create(project=project, identifier=" newcomer ", role="viewer", inviter=manager)
    invitation = Invitation.objects.get()
    assert (invitation.identifier, invitation.invitee, invitation.invited_by) == (
        "newcomer",
        newcomer,
        users["manager"],
    )
    with pytest.raises(PermissionDeniedError):
        invitation_accept(invitation=invitation, user=users["outsider"])
    joined = invitation_accept(invitation=invitation, user=newcomer)
    assert (joined.project, joined.role) == (project, "viewer")
    assert not Invitation.objects.exists()
    # inviting a member changes nothing
    invitation_create(project=project, identifier="newcomer", role="manager", inviter=manager)
    assert not Invitation.objects.exists()
    assert member(project, newcomer).role == "viewer"
