"""The websocket contract: one declaration in Python, TypeScript generated from it, and the
payloads the services build match it."""

from pathlib import Path
from typing import Any, get_args

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from samapp.realtime import contract
from samapp.realtime.typescript import events_typescript
from samapp.services.annotations import annotation_create, annotation_delete, annotation_payload
from tests.conftest import rle_box

GENERATED = Path(__file__).resolve().parents[2] / "frontend" / "src" / "api" / "events.gen.ts"


def test_committed_typescript_matches_the_contract() -> None:
    assert GENERATED.read_text(encoding="utf-8") == events_typescript(), (
        "frontend/src/api/events.gen.ts is stale: run `python manage.py events_ts`"
    )


def test_events_ts_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "events.gen.ts"
    stale.write_text("export type ServerEvent = never;\n")
    with pytest.raises(CommandError, match="stale"):
        call_command("events_ts", "--check", "--output", str(stale))
    call_command("events_ts", "--output", str(stale))
    call_command("events_ts", "--check", "--output", str(stale))


def test_every_event_is_in_the_typescript_union() -> None:
    text = events_typescript()
    names = [str(event) for event in contract.SERVER_EVENTS]
    assert len(set(names)) == len(names)
    for name in names:
        assert f'{{ event: "{name}"; payload: ' in text
    assert "AnnotationDeletedPayload & Sequenced" in text
    assert "export type JobProgress = ExportProgress | SegmentProgress" in text


def test_an_event_is_its_name() -> None:
    assert contract.ANNOTATION_DELETED == "annotation.deleted"
    assert type(str(contract.ANNOTATION_DELETED)) is str
    assert contract.ANNOTATION_DELETED.logged
    assert not contract.JOB_PROGRESS.logged
    assert set(get_args(contract.JOB_PROGRESS.payload_type)) == {
        contract.ExportProgress,
        contract.SegmentProgress,
        contract.ProposalsProgress,
        contract.TrainingProgress,
    }


def _keys(payload_type: Any) -> set[str]:
    return set(payload_type.__required_keys__)


def test_annotation_payloads_have_the_contract_keys(
    project, make_image, annotation_broadcasts, django_capture_on_commit_callbacks
) -> None:
    sent = annotation_broadcasts
    image = make_image(project, width=8, height=6)
    with django_capture_on_commit_callbacks(execute=True):
        annotation = annotation_create(image=image, author=None, rle=rle_box(6, 8))
    assert set(annotation_payload(annotation)) == _keys(contract.AnnotationPayload)
    with django_capture_on_commit_callbacks(execute=True):
        annotation_delete(annotation=annotation, expected_version=1)
    by_event = {str(message["event"]): message["payload"] for message in sent}
    assert set(by_event["annotation.created"]) == _keys(contract.AnnotationPayload) | {"seq"}
    deleted = by_event["annotation.deleted"]
    assert set(deleted) == _keys(contract.AnnotationDeletedPayload) | {"seq"}
    # The page that shows an image drops a teammate's deletion by this image id.
    assert deleted["image"] == image.id
