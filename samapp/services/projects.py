"""Writes for projects, members and labels."""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from samapp.choices import ReviewPolicy, Role
from samapp.errors import ApplicationError, ConflictError, PermissionDeniedError
from samapp.models import Annotation, ExportJob, Image, Invitation, Label, Membership, Project
from samapp.realtime import contract
from samapp.roles import Capability, role_can
from samapp.services.annotation_events import annotation_events_record, project_lock
from samapp.services.annotations import annotation_payload, annotations_discard
from samapp.services.api_tokens import user_sockets_recheck
from samapp.services.job_limits import project_settings_clean

MAX_LABELS = 100


def _check_model_key(model_key: str) -> None:
    """A project names a registry model; fine-tuned versions are switched to only by
    activation (samapp.services.model_versions), which checks they belong to the project."""
    from samapp.ml.registry import MODELS

    if model_key not in MODELS:
        raise ApplicationError(
            f"Unknown model {model_key!r}; choose one of {', '.join(sorted(MODELS))}."
        )


@transaction.atomic
def project_create(
    *,
    name: str,
    created_by: User,
    description: str = "",
    default_model_key: str | None = None,
    labels: Iterable[tuple[str, str]] = (),
    review_policy: str = ReviewPolicy.PROPOSED,
) -> Project:
    """Create a project with its labels in one transaction; its creator becomes its owner.
    Without a model key it gets the default model (`SAM_DEFAULT_MODEL`; with `auto`, the
    first present real model, or sam_tiny while one downloads, switched once it is present)."""
    from samapp.services.model_downloads import (
        model_default_for_new_project,
        project_model_switch,
    )

    if not name.strip():
        raise ApplicationError("A project needs a name.")
    pending = None
    if default_model_key:
        _check_model_key(default_model_key)
    else:
        default_model_key, pending = model_default_for_new_project()
    if review_policy not in ReviewPolicy.values:
        raise ApplicationError(
            f"Unknown review policy {review_policy!r}; choose one of "
            f"{', '.join(ReviewPolicy.values)}."
        )
    labels = list(labels)
    if len(labels) > MAX_LABELS:
        raise ApplicationError(f"A project has at most {MAX_LABELS} labels.")
    project = Project.objects.create(
        name=name.strip(),
        description=description,
        created_by=created_by,
        review_policy=review_policy,
        default_model_key=default_model_key,
    )
    if pending is not None:
        project_model_switch(project=project, model_key=pending)
    Membership.objects.create(project=project, user=created_by, role=Role.OWNER)
    for label_name, color in labels:
        label_create(project=project, name=label_name, color=color)
    return project


def project_update(*, project: Project, data: dict[str, object]) -> Project:
    """Change the project's fields; `archived` (a bool) archives or unarchives it."""
    allowed = {"name", "description", "default_model_key", "settings", "review_policy", "archived"}
    unknown = set(data) - allowed
    if unknown:
        raise ApplicationError(f"Cannot change {', '.join(sorted(unknown))}.")
    if "name" in data:
        name = str(data["name"]).strip()
        if not name:
            raise ApplicationError("A project needs a name.")
        data = {**data, "name": name}
    if "archived" in data:
        data = dict(data)
        archived = bool(data.pop("archived"))
        if archived != (project.archived_at is not None):
            data["archived_at"] = timezone.now() if archived else None
    if "default_model_key" in data:
        from samapp.services.model_downloads import project_model_switch

        data = dict(data)
        model_key = str(data.pop("default_model_key"))
        _check_model_key(model_key)
        # Also for the model in use: that drops a switch still waiting for a download.
        project_model_switch(project=project, model_key=model_key)
        project.refresh_from_db(fields=["default_model_key"])
    if "settings" in data:
        data = {
            **data,
            "settings": project_settings_clean(
                current=project.settings or {}, changes=data["settings"]
            ),
        }
    for field, value in data.items():
        setattr(project, field, value)
    project.full_clean()
    project.save()
    return project


def project_delete(*, project: Project) -> None:
    """Delete the project with everything in it; its stored image and export files go once
    the deletion is committed (embeddings are shared by content across projects: kept)."""
    names = [
        name
        for name in Image.objects.filter(project=project).values_list("file", flat=True)
        if name
    ]
    names += [
        name
        for name in ExportJob.objects.filter(project=project).values_list("result_file", flat=True)
        if name
    ]
    with transaction.atomic():
        project.delete()
        transaction.on_commit(lambda: _storage_delete(names))


def _storage_delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def member_add(*, project: Project, user: User, role: str) -> Membership:
    """Make `user` a member directly, without their consent: for staff tools and the
    invitation service only; the API invites (`samapp.services.invitations`)."""
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    try:
        with transaction.atomic():
            return Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError as exc:
        raise ApplicationError(f"{user} is already a member of this project.") from exc


def _ensure_an_owner_remains(membership: Membership) -> None:
    """Inside the caller's transaction: the project row lock makes two owners stepping down
    at once take turns, so the second sees the first one gone."""
    if membership.role != Role.OWNER:
        return
    project_lock(project_id=membership.project_id)
    owners = Membership.objects.filter(project_id=membership.project_id, role=Role.OWNER)
    if owners.count() <= 1:
        raise ApplicationError("A project must keep at least one owner.")


def _owner_role_check(*, actor: Membership | None, roles: tuple[str, ...]) -> None:
    """Only owners hand out or take away ownership (`actor` None: the member themself)."""
    if actor is not None and Role.OWNER in roles and not role_can(actor.role, Capability.OWN):
        raise PermissionDeniedError("Only an owner can grant or revoke the owner role.")


@transaction.atomic
def member_update(*, membership: Membership, role: str, actor: Membership) -> Membership:
    """Change a member's role, as `actor` (a manager or owner of the project)."""
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    _owner_role_check(actor=actor, roles=(membership.role, role))
    if role != Role.OWNER:
        _ensure_an_owner_remains(membership)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    user_sockets_recheck(user_id=membership.user_id)
    return membership


def member_remove(*, membership: Membership, actor: Membership | None = None) -> None:
    """Remove a member, as `actor` (a manager or owner), or a member leaves (no actor); their
    images go back to nobody's queue, the invitations they sent and any still pending to
    them are revoked (so nobody rejoins through an invitation sent before the removal), and
    their open websockets on this project are closed."""
    _owner_role_check(actor=actor, roles=(membership.role,))
    project_id, user_id = membership.project_id, membership.user_id
    with transaction.atomic():
        _ensure_an_owner_remains(membership)
        membership.delete()
        Image.objects.filter(project_id=project_id, assignee_id=user_id).update(assignee=None)
        Invitation.objects.filter(
            Q(invited_by_id=user_id) | Q(invitee_id=user_id), project_id=project_id
        ).delete()
    user_sockets_recheck(user_id=user_id)


def _validate_color(color: str) -> str:
    value = color.strip().lower()
    if len(value) != 7 or value[0] != "#" or any(c not in "0123456789abcdef" for c in value[1:]):
        raise ApplicationError(f"Colour {color!r} is not of the form #rrggbb.")
    return value


def label_create(*, project: Project, name: str, color: str = "#ff0000") -> Label:
    if not name.strip():
        raise ApplicationError("A label needs a name.")
    try:
        with transaction.atomic():
            return Label.objects.create(
                project=project, name=name.strip(), color=_validate_color(color)
            )
    except IntegrityError as exc:
        raise ApplicationError(f"A label named {name!r} exists already.") from exc


def label_update(*, label: Label, name: str | None = None, color: str | None = None) -> Label:
    if name is not None:
        if not name.strip():
            raise ApplicationError("A label needs a name.")
        label.name = name.strip()
    if color is not None:
        label.color = _validate_color(color)
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError as exc:
        raise ApplicationError(f"A label named {label.name!r} exists already.") from exc
    return label


class LabelAnnotations:
    """What deleting a label does to the annotations that carry it."""

    REASSIGN = "reassign"
    UNLABEL = "unlabel"
    DELETE = "delete"
    CHOICES = (REASSIGN, UNLABEL, DELETE)


def label_delete(
    *, label: Label, annotations: str | None = None, reassign_to: Label | None = None
) -> None:
    """Delete `label`. When annotations carry it, the caller says what becomes of them:
    `reassign` gives them `reassign_to` (another label of the project), `delete` deletes
    them; without a choice the deletion is refused (HTTP 409, with their count). Each changed
    annotation bumps its version and is logged and broadcast, as any edit is."""
    if annotations is not None and annotations not in LabelAnnotations.CHOICES:
        raise ApplicationError(
            f"annotations must be one of {', '.join(LabelAnnotations.CHOICES)}, "
            f"got {annotations!r}."
        )
    if annotations == LabelAnnotations.REASSIGN:
        if reassign_to is None:
            raise ApplicationError("Choose the label that takes over the annotations.")
        if reassign_to.project_id != label.project_id or reassign_to.pk == label.pk:
            raise ApplicationError("Reassign to another label of this project.")
    project_id = label.project_id
    with transaction.atomic():
        project_lock(project_id=project_id)
        carried = Annotation.objects.filter(label=label)
        count = carried.count()
        if count and annotations is None:
            raise ConflictError(
                f"{count} annotations carry the label {label.name!r}: reassign them to "
                "another label, keep them unlabelled or delete them.",
                {"annotation_count": count},
            )
        if annotations in (LabelAnnotations.REASSIGN, LabelAnnotations.UNLABEL):
            ids = list(carried.values_list("pk", flat=True))
            target = reassign_to if annotations == LabelAnnotations.REASSIGN else None
            carried.update(label=target, version=F("version") + 1, updated_at=timezone.now())
            annotation_events_record(
                project_id=project_id,
                events=[
                    (contract.ANNOTATION_UPDATED, annotation_payload(annotation))
                    for annotation in Annotation.objects.filter(pk__in=ids).order_by("pk")
                ],
            )
        elif annotations == LabelAnnotations.DELETE:
            annotations_discard(annotations=carried)
        label.delete()
