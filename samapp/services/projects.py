"""Writes for projects, members and labels."""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from samapp.errors import ApplicationError
from samapp.models import ExportJob, Image, Label, Membership, Project, Role
from samapp.realtime.events import notify_user


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
) -> Project:
    """Create a project; its creator becomes its owner."""
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
    project = Project.objects.create(
        name=name.strip(),
        description=description,
        created_by=created_by,
        default_model_key=default_model_key,
    )
    if pending is not None:
        project_model_switch(project=project, model_key=pending)
    Membership.objects.create(project=project, user=created_by, role=Role.OWNER)
    for label_name, color in labels:
        label_create(project=project, name=label_name, color=color)
    return project


def project_update(*, project: Project, data: dict[str, object]) -> Project:
    allowed = {"name", "description", "default_model_key", "settings"}
    unknown = set(data) - allowed
    if unknown:
        raise ApplicationError(f"Cannot change {', '.join(sorted(unknown))}.")
    if "default_model_key" in data:
        from samapp.services.model_downloads import project_model_switch

        data = dict(data)
        model_key = str(data.pop("default_model_key"))
        _check_model_key(model_key)
        if model_key != project.default_model_key:
            project_model_switch(project=project, model_key=model_key)
            project.refresh_from_db(fields=["default_model_key"])
    if "settings" in data:
        settings = data["settings"]
        if not isinstance(settings, dict):
            raise ApplicationError("settings must be an object.")
        data = {**data, "settings": {**project.settings, **settings}}
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
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    try:
        with transaction.atomic():
            return Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError as exc:
        raise ApplicationError(f"{user} is already a member of this project.") from exc


def _ensure_an_owner_remains(membership: Membership) -> None:
    if membership.role != Role.OWNER:
        return
    owners = Membership.objects.filter(project_id=membership.project_id, role=Role.OWNER)
    if owners.count() <= 1:
        raise ApplicationError("A project must keep at least one owner.")


def member_update(*, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    if role != Role.OWNER:
        _ensure_an_owner_remains(membership)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    return membership


def member_remove(*, membership: Membership) -> None:
    """Remove a member; their open websockets on this project are closed."""
    _ensure_an_owner_remains(membership)
    project_id, user_id = membership.project_id, membership.user_id
    membership.delete()
    transaction.on_commit(
        lambda: notify_user(
            user_id=user_id, message_type="membership.revoked", payload={"project_id": project_id}
        )
    )


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


def label_delete(*, label: Label) -> None:
    label.delete()
