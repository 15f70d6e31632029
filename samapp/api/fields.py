"""Input fields shared by the API's serializers."""

from typing import Any

from rest_framework import serializers

from samapp.services.job_limits import PROJECT_SETTINGS

# The largest primary key any supported database stores (a signed 64-bit integer). Bigger
# numbers would reach the database driver and fail there (a 500), not as a 400.
MAX_ID = 2**63 - 1


class IdField(serializers.IntegerField):
    """A primary key given by a client: a positive integer the database can compare."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


def job_option_field(setting: str) -> serializers.Field[Any, Any, Any, Any]:
    """An optional job option bounded as the project setting that supplies its default."""
    bound = PROJECT_SETTINGS[setting]
    if bound.kind is int:
        return serializers.IntegerField(
            min_value=int(bound.low), max_value=int(bound.high), required=False
        )
    return serializers.FloatField(min_value=bound.low, max_value=bound.high, required=False)
