"""OpenAPI generation: component names for the styleguide's nested serializers, the API
token's security scheme, and the annotation schema shared with the websocket contract."""

from typing import Any

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import resolve_type_hint
from drf_spectacular.utils import Direction

from samapp.realtime.contract import AnnotationPayload


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


class AnnotationOutputSchema(OpenApiSerializerExtension):
    """`AnnotationOutput` renders `annotation_payload`: its schema is the websocket
    contract's `AnnotationPayload`, so REST and websocket clients see one type."""

    target_class = "samapp.api.annotations.AnnotationOutput"

    def get_name(self, auto_schema: Any = None, direction: Any = None) -> str:
        return "Annotation"

    def map_serializer(self, auto_schema: Any, direction: Direction) -> Any:
        return resolve_type_hint(AnnotationPayload)
