"""JSON from clients (request bodies, websocket frames): parsed with its nesting bounded."""

import json
from typing import Any


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests arrays/objects deeper than ``limit`` (iterative, so
    any depth is measured without recursion; stops at the first level over the limit)."""
    if not isinstance(value, dict | list):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def json_parse_bounded(text: str, *, max_depth: int) -> Any:
    """Strict JSON (no NaN or Infinity) with at most ``max_depth`` levels of arrays/objects.
    Raises ValueError with the reason (bad JSON, too deep, a number with too many digits)."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    if json_depth_exceeds(value, max_depth):
        raise ValueError(f"nested deeper than {max_depth} levels")
    return value
