"""Invitations: nobody joins a project without accepting one.

A manager invites a username or an e-mail address with a role. The answer never says whether
that names an account: an invitation row is stored either way (naming the account, or no one)
and counts against the project's cap of pending invitations. The invited user lists their
invitations and accepts (becoming a member with the offered role) or declines. Invitations
expire after `samapp.selectors.projects.INVITATION_TTL`. Staff add members directly through the
Django admin only."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from samapp.choices import Role
from samapp.errors import ApplicationError, PermissionDeniedError
from samapp.models import Invitation, Membership, Project
from samapp.roles import Capability, role_can
from samapp.selectors.projects import invitation_expiry_cutoff
from samapp.services.annotation_events import project_lock

MAX_PENDING_INVITATIONS = 100
MAX_IDENTIFIER_CHARS = 254


def _invitee_for(identifier: str) -> User | None:
    """The one active account `identifier` names (a username, or an e-mail address that a
    single active account has), else None."""
    users = get_user_model().objects.filter(is_active=True)
    if "@" in identifier:
        matches = list(users.filter(email__iexact=identifier)[:2])
        return matches[0] if len(matches) == 1 else None
    return users.filter(username=identifier).first()


def _normalize(identifier: str) -> str:
    value = identifier.strip()
    if not value:
        raise ApplicationError("Give a username or an e-mail address.")
    if len(value) > MAX_IDENTIFIER_CHARS:
        raise ApplicationError(
            f"A username or e-mail has at most {MAX_IDENTIFIER_CHARS} characters."
        )
    return value.lower() if "@" in value else value


def invitation_create(*, project: Project, identifier: str, role: str, inviter: Membership) -> None:
    """Invite `identifier` to `project` as `role` (see the module docstring). Returns nothing:
    what the caller may tell the inviter does not depend on whether the account exists. A
    second invitation of the same identifier replaces the first's role and restarts its
    expiry; inviting a current member changes nothing."""
    if inviter.project_id != project.pk or not role_can(inviter.role, Capability.MANAGE):
        raise PermissionDeniedError(f"Your role ({inviter.role}) cannot manage this project.")
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    if role == Role.OWNER and not role_can(inviter.role, Capability.OWN):
        raise PermissionDeniedError("Only an owner can grant or revoke the owner role.")
    value = _normalize(identifier)
    with transaction.atomic():
        # The project row lock serializes invitations per project, so the cap holds.
        project_lock(project_id=project.pk)
        pending = Invitation.objects.filter(project=project)
        pending.filter(created_at__lt=invitation_expiry_cutoff()).delete()
        existing = pending.filter(identifier=value).first()
        if existing is None and pending.count() >= MAX_PENDING_INVITATIONS:
            raise ApplicationError(
                f"This project has {MAX_PENDING_INVITATIONS} pending invitations: "
                "wait for answers or revoke some first."
            )
        invitee = _invitee_for(value)
        if Membership.objects.filter(project=project, user=invitee).exists():
            return
        if existing is not None:
            existing.delete()
        Invitation.objects.create(
            project=project,
            identifier=value,
            invitee=invitee,
            role=role,
            invited_by=inviter.user,
        )


def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """The invited user joins the project with the offered role; the invitation is used up.
    An invitation to someone already a member just goes away."""
    if invitation.invitee_id != user.pk:
        raise PermissionDeniedError("This invitation is not yours.")
    with transaction.atomic():
        invitation.delete()
        try:
            with transaction.atomic():
                return Membership.objects.create(
                    project_id=invitation.project_id, user=user, role=invitation.role
                )
        except IntegrityError:
            return Membership.objects.get(project_id=invitation.project_id, user=user)


def invitation_decline(*, invitation: Invitation, user: User) -> None:
    if invitation.invitee_id != user.pk:
        raise PermissionDeniedError("This invitation is not yours.")
    invitation.delete()


def invitation_revoke(*, invitation: Invitation, actor: Membership) -> None:
    if actor.project_id != invitation.project_id or not role_can(actor.role, Capability.MANAGE):
        raise PermissionDeniedError(f"Your role ({actor.role}) cannot manage this project.")
    if invitation.role == Role.OWNER and not role_can(actor.role, Capability.OWN):
        raise PermissionDeniedError("Only an owner can grant or revoke the owner role.")
    invitation.delete()
