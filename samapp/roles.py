"""What each project role may do; the one table every permission check reads."""

from enum import Enum

from samapp.models import Role


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
