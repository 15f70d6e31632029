"""What each project role may do; the one table every permission check reads."""

from enum import Enum

from samapp.choices import ImageStatus, Role
from samapp.errors import ConflictError, PermissionDeniedError
from samapp.models import Membership, Project


class Capability(Enum):
    VIEW = "view"
    ANNOTATE = "annotate"
    REVIEW = "review"
    MANAGE = "manage"
    OWN = "own"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.OWNER: frozenset(Capability),
    Role.MANAGER: frozenset(
        {Capability.VIEW, Capability.ANNOTATE, Capability.REVIEW, Capability.MANAGE}
    ),
    Role.REVIEWER: frozenset({Capability.VIEW, Capability.ANNOTATE, Capability.REVIEW}),
    Role.ANNOTATOR: frozenset({Capability.VIEW, Capability.ANNOTATE}),
    Role.VIEWER: frozenset({Capability.VIEW}),
}


def role_can(role: str, capability: Capability) -> bool:
    return capability in ROLE_CAPABILITIES.get(role, frozenset())


def project_writable_check(project: Project) -> None:
    """An archived project keeps its work readable and exportable but takes no new work
    (annotations, reviews, uploads, jobs) until a manager unarchives it in its settings."""
    if project.archived_at is not None:
        raise ConflictError(
            "This project is archived: a manager can unarchive it in the project's settings."
        )


def membership_require(actor: Membership, capability: Capability) -> None:
    """Refuse (403) what the actor's role cannot do, and (409) any work in an archived project."""
    if not role_can(actor.role, capability):
        raise PermissionDeniedError(
            f"Your role ({actor.role}) cannot {capability.value} in this project."
        )
    if capability is not Capability.VIEW:
        project_writable_check(actor.project)


_ANY_TO_ANY = frozenset((a, b) for a in ImageStatus.values for b in ImageStatus.values if a != b)

# Who may move an image from one status to another. A role may make a transition when any of
# its capabilities allows it; staying in the same status is always allowed.
IMAGE_TRANSITIONS: dict[Capability, frozenset[tuple[str, str]]] = {
    Capability.ANNOTATE: frozenset(
        {
            (ImageStatus.NEW, ImageStatus.IN_PROGRESS),
            (ImageStatus.NEW, ImageStatus.DONE),
            (ImageStatus.IN_PROGRESS, ImageStatus.DONE),
            (ImageStatus.DONE, ImageStatus.IN_PROGRESS),
        }
    ),
    Capability.REVIEW: frozenset(
        {(status, ImageStatus.REVIEWED) for status in ImageStatus.values}
        | {
            (ImageStatus.REVIEWED, ImageStatus.IN_PROGRESS),
            (ImageStatus.REVIEWED, ImageStatus.DONE),
        }
    ),
    Capability.MANAGE: _ANY_TO_ANY,
}


def role_can_move_image(role: str, current: str, wanted: str) -> bool:
    if current == wanted:
        return True
    return any(
        (current, wanted) in IMAGE_TRANSITIONS.get(capability, frozenset())
        for capability in ROLE_CAPABILITIES.get(role, frozenset())
    )
