"""The generated shapes data set: determinism, shapes and dtypes, hard-enough scenes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samapp.ml.synthetic import (
    MAX_OBJECTS,
    MIN_VISIBLE_AREA,
    SCENE_SIZE,
    generate_objects,
    generate_scene,
)


def assert_valid(scene, size=SCENE_SIZE):
    assert scene.image.shape == (size, size, 3)
    assert scene.image.dtype == np.uint8
    assert 1 <= len(scene.masks) <= MAX_OBJECTS
    covered = np.zeros((size, size), bool)
    for mask in scene.masks:
        assert mask.shape == (size, size)
        assert mask.dtype == bool
        assert mask.sum() >= MIN_VISIBLE_AREA
        assert not (covered & mask).any(), "visible parts of instances must not overlap"
        covered |= mask


@pytest.mark.parametrize("style", ["default", "novel"])
def test_scene_is_deterministic_and_valid(style):
    first = generate_scene(7, 3, style)
    again = generate_scene(7, 3, style)
    assert_valid(first)
    np.testing.assert_array_equal(first.image, again.image)
    assert len(first.masks) == len(again.masks)
    for a, b in zip(first.masks, again.masks):
        np.testing.assert_array_equal(a, b)


def test_seeds_indices_and_styles_give_different_scenes():
    images = [
        generate_scene(0, 0).image,
        generate_scene(1, 0).image,
        generate_scene(0, 1).image,
        generate_scene(0, 0, "novel").image,
    ]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert not np.array_equal(images[i], images[j])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    index=st.integers(0, 10**6),
    style=st.sampled_from(["default", "novel"]),
)
def test_any_scene_is_valid(seed, index, style):
    assert_valid(generate_scene(seed, index, style))


def test_other_sizes():
    assert_valid(generate_scene(0, 0, size=96), size=96)


def test_scenes_are_not_easy():
    """Across scenes: every object count, small and large objects, occlusions, noise."""
    scenes = [generate_scene(11, i) for i in range(150)]
    counts = {len(s.masks) for s in scenes}
    assert counts == set(range(1, MAX_OBJECTS + 1))
    areas = np.array([m.sum() for s in scenes for m in s.masks])
    assert areas.min() < 600, "objects of about 12 px half-size"
    assert areas.max() > 8000, "objects of about 70 px half-size"
    touching = 0
    for scene in scenes:
        for i, a in enumerate(scene.masks):
            grown = np.zeros_like(a)
            grown[1:] |= a[:-1]
            grown[:-1] |= a[1:]
            grown[:, 1:] |= a[:, :-1]
            grown[:, :-1] |= a[:, 1:]
            touching += sum(bool((grown & b).any()) for b in scene.masks[i + 1 :])
    assert touching > 50, "overlapping shapes leave instances that touch each other"
    for scene in scenes[:20]:
        for mask in scene.masks:
            pixels = scene.image[mask].astype(float)
            assert pixels.std(axis=0).max() > 1.0, "objects are noisy or textured"


def test_generate_objects_counts_exactly():
    scenes = generate_objects(5, 23)
    assert sum(len(s.masks) for s in scenes) == 23
    first = generate_scene(5, 0)
    np.testing.assert_array_equal(scenes[0].image, first.image)
