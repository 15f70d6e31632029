"""OpenAPI generation: component names for the styleguide's nested serializers, and the API
token's security scheme."""

from typing import Any

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import Direction


class AutoSchema(SpectacularAutoSchema):
    """Names a nested serializer after the API class holding it.

    Every API keeps its own `InputSerializer` / `OutputSerializer` / `FilterSerializer`
    (HackSoftware's Django-Styleguide); by class name alone they would all collide as one
    "InputRequest" component. `ExportListCreateApi.InputSerializer` becomes
    "ExportListCreateInput" instead. An explicit `extend_schema_serializer(component_name=...)`
    still wins."""

    def get_serializer_name(self, serializer: Any, direction: Direction) -> str:
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if not outer or "<locals>" in outer:
            return super().get_serializer_name(serializer, direction)
        outer = outer.rpartition(".")[2].removesuffix("Api").removesuffix("View")
        return outer + inner.removesuffix("Serializer")


class ApiTokenScheme(KnoxTokenScheme):
    """``Authorization: Token sam_…`` (knox's scheme, for its subclass that the API uses)."""

    target_class = "samapp.api.authentication.ApiTokenAuthentication"
    name = "apiToken"
