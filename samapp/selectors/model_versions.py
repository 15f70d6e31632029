"""Reads of fine-tuned model versions, scoped by membership."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from samapp.ml.model_keys import parse_version_key
from samapp.models import Membership


def model_key_visible(*, user: AbstractBaseUser | AnonymousUser, model_key: str) -> bool:
    """Registry models are public; a project's fine-tuned version (trained on its data) is
    visible to the project's members only."""
    parsed = parse_version_key(model_key)
    if parsed is None:
        return True
    if not user.is_authenticated:
        return False
    return Membership.objects.filter(project_id=parsed[1], user_id=user.pk).exists()
