"""The data engine fixtures (generated shapes with accepted annotations)."""

from tests.model_versions.conftest import in_memory_layer, sam_random_fallback, shapes_project

__all__ = ["in_memory_layer", "sam_random_fallback", "shapes_project"]
