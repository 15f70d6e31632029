"""Fixtures for the data engine: projects of generated shapes with accepted annotations.

``shapes_project(project, count, style="novel", seed=...)`` stores ``count`` generated scenes
(``samapp.ml.synthetic``) as images of ``project`` with one accepted annotation per visible
object, and returns the images. ``sam_random_fallback`` (from the pipeline fixtures) lets
the tests run before the committed ``sam_tiny`` checkpoint exists.
"""

import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image as PILImage

from tests.fixtures import in_memory_layer, sam_random_fallback

__all__ = ["in_memory_layer", "sam_random_fallback"]


def scene_png(image: Any) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def shapes_project(users: dict[str, Any]) -> Callable[..., list[Any]]:
    from django.core.files.base import ContentFile

    from samapp.choices import AnnotationSource, ReviewState
    from samapp.ml.masks import mask_to_rle
    from samapp.ml.synthetic import generate_scene
    from samapp.models import Image
    from samapp.services.annotations import AnnotationDraft, annotations_bulk_create

    def make(
        project: Any,
        count: int,
        *,
        style: str = "novel",
        seed: int = 77,
        label: Any = None,
        author: Any = None,
    ) -> list[Any]:
        images, drafts = [], []
        for index in range(count):
            scene = generate_scene(seed, index, style)  # type: ignore[arg-type]
            content = scene_png(scene.image)
            image = Image(
                project=project,
                original_name=f"{style}-{seed}-{index}.png",
                sha256=hashlib.sha256(content).hexdigest(),
                format="PNG",
                width=scene.image.shape[1],
                height=scene.image.shape[0],
                uploaded_by=users["owner"],
            )
            image.file.save(image.original_name, ContentFile(content), save=False)
            image.save()
            images.append(image)
            drafts += [
                AnnotationDraft(image=image, rle=mask_to_rle(mask), label=label)
                for mask in scene.masks
            ]
        annotations_bulk_create(
            drafts=drafts,
            author=author or users["annotator"],
            source=AnnotationSource.CLICK,
            review_state=ReviewState.ACCEPTED,
        )
        return images

    return make
