from tests.fixtures import (
    connect,
    in_memory_layer,
    pg_database_url,
    sam_random_fallback,
    token_for,
)

__all__ = ["connect", "in_memory_layer", "pg_database_url", "sam_random_fallback", "token_for"]
