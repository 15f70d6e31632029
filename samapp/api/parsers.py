"""The API's JSON parser: bodies are bounded in size and nesting before any view sees them."""

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests arrays/objects deeper than ``limit`` (iterative, so
    any depth is measured without recursion; stops at the first branch over the limit)."""
    if not isinstance(value, dict | list):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class BoundedJSONParser(JSONParser):
    """JSON with at most SAM_MAX_JSON_BODY_BYTES bytes and SAM_MAX_JSON_DEPTH levels of
    arrays/objects; NaN and Infinity are refused. Anything else is a 400 with the reason."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.SAM_MAX_JSON_BODY_BYTES
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise ParseError(f"JSON body larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            value = json.loads(data.decode(encoding), parse_constant=_reject_constant)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        except ValueError as exc:  # bad JSON, bad text encoding, too many digits in a number
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from exc
        depth = settings.SAM_MAX_JSON_DEPTH
        if json_depth_exceeds(value, depth):
            raise ParseError(f"JSON parse error - nested deeper than {depth} levels.")
        return value
