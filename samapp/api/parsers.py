"""The API's JSON parser: bodies are bounded in size and nesting before any view sees them."""

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from samapp.json_input import json_parse_bounded


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
            return json_parse_bounded(data.decode(encoding), max_depth=settings.SAM_MAX_JSON_DEPTH)
        except ValueError as exc:  # bad JSON or text encoding, too deep, too many digits
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from exc
