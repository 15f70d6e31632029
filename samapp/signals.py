"""Account events that revoke access: a password change or a deactivation revokes every API
token of the user and closes their sockets, as does deleting the user; a logout closes the
sockets of that session. Connected in SamappConfig.ready()."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save

from samapp.services.api_tokens import api_tokens_revoke_all, user_sockets_recheck

WATCHED = ("password", "is_active")


def _remember_credentials(sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    """Before a user is saved, what the database holds for the fields that grant access."""
    instance._credentials_before = None
    if instance.pk is None or (update_fields is not None and not set(WATCHED) & update_fields):
        return
    instance._credentials_before = (
        sender.objects.filter(pk=instance.pk).values_list(*WATCHED).first()
    )


def _revoke_on_credential_change(sender: Any, instance: Any, created: bool, **_: Any) -> None:
    before = getattr(instance, "_credentials_before", None)
    if created or before is None:
        return
    password, is_active = before
    if password != instance.password or (is_active and not instance.is_active):
        api_tokens_revoke_all(user_id=instance.pk)


def _close_deleted_users_sockets(sender: Any, instance: Any, **_: Any) -> None:
    user_sockets_recheck(user_id=instance.pk)


def _close_logged_out_sockets(sender: Any, request: Any, user: Any, **_: Any) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        user_sockets_recheck(user_id=user.pk, revoked_session=session_key)


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_remember_credentials, sender=user_model, dispatch_uid="sam-credentials")
    post_save.connect(
        _revoke_on_credential_change, sender=user_model, dispatch_uid="sam-credentials"
    )
    post_delete.connect(
        _close_deleted_users_sockets, sender=user_model, dispatch_uid="sam-credentials"
    )
    user_logged_out.connect(_close_logged_out_sockets, dispatch_uid="sam-logout")
