"""Generated shapes scenes for training and evaluating the tiny SAM.

A scene is a textured, noisy background with 1-5 textured shapes (ellipses, rotated
rectangles, triangles and other polygons, half-size about 12-70 px) that overlap and
occlude each other; each instance mask is the visible part of its shape. Scenes are a
pure function of ``(seed, index, style)``, so any scene can be regenerated anywhere.

``style="novel"`` draws other shapes (stars, rings, crosses) with other textures
(checkerboards, dots) to test generalisation to an unseen style.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Style = Literal["default", "novel"]
SCENE_SIZE = 256
MIN_HALF_SIZE = 12.0
MAX_HALF_SIZE = 70.0
MAX_OBJECTS = 5
MIN_VISIBLE_AREA = 80
MIN_VISIBLE_FRACTION = 0.25
MIN_COLOUR_DISTANCE = 60.0
OVERLAP_PROBABILITY = 0.5
MIN_BLUR_SIGMA = 0.3  # lighter blurs are skipped (invisible at 8 bits)


@dataclass(frozen=True)
class Scene:
    """One generated scene.

    Attributes:
      image: (H, W, 3) uint8 RGB.
      masks: one (H, W) bool array per instance, the visible part of each shape,
        in drawing order (later ones occlude earlier ones); at least one. Shapes whose
        visible part is under MIN_VISIBLE_AREA pixels or MIN_VISIBLE_FRACTION of the
        shape stay drawn but are not listed.
    """

    image: np.ndarray
    masks: list[np.ndarray]


Texture = Callable[[np.random.Generator, int, int], np.ndarray]
ShapeDrawer = Callable[[np.random.Generator, np.ndarray, tuple[float, float], float], None]


def _blotches(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth low-frequency colour variation, (h, w, 3) float32 around 0."""
    cells = int(rng.integers(2, 9))
    grid = rng.normal(0.0, 1.0, (cells, cells, 3)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(10, 40)


def _stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Sinusoidal stripes of random period and angle, (h, w, 3) float32 around 0."""
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(4, 32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
    return wave[..., None] * (rng.uniform(8, 35) * rng.uniform(0.3, 1.0, 3)).astype(np.float32)


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A linear colour ramp, (h, w, 3) float32 around 0."""
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx * np.cos(theta) + yy * np.sin(theta)) / max(h, w) - 0.5
    return ramp[..., None] * rng.uniform(-60, 60, 3).astype(np.float32)


def _flat(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """No texture, (h, w, 3) float32 zeros."""
    return np.zeros((h, w, 3), np.float32)


def _checker(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A checkerboard of random cell size, (h, w, 3) float32 around 0."""
    cell = int(rng.integers(3, 16))
    yy, xx = np.mgrid[0:h, 0:w]
    board = (((yy // cell) + (xx // cell)) % 2).astype(np.float32) - 0.5
    return board[..., None] * rng.uniform(-70, 70, 3).astype(np.float32)


def _dots(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random dots, (h, w, 3) float32 around 0."""
    layer = np.zeros((h, w), np.float32)
    for _ in range(max(1, h * w // 150)):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(layer, centre, int(rng.integers(1, 4)), 1.0, -1)
    return layer[..., None] * rng.uniform(-70, 70, 3).astype(np.float32)


def _polygon_points(
    centre: tuple[float, float], radii: np.ndarray, angles: np.ndarray
) -> np.ndarray:
    """(K, 1, 2) int32 vertices at ``radii`` and ``angles`` around ``centre``."""
    xs = centre[0] + radii * np.cos(angles)
    ys = centre[1] + radii * np.sin(angles)
    return np.round(np.stack([xs, ys], axis=1)).astype(np.int32)[:, None, :]


def _draw_ellipse(
    rng: np.random.Generator, mask: np.ndarray, centre: tuple[float, float], size: float
) -> None:
    axes = (round(size), round(size * rng.uniform(0.5, 1.0)))
    cv2.ellipse(
        mask, (round(centre[0]), round(centre[1])), axes, rng.uniform(0, 180), 0, 360, 1, -1
    )


def _draw_rectangle(
    rng: np.random.Generator, mask: np.ndarray, centre: tuple[float, float], size: float
) -> None:
    rect = (centre, (2 * size, 2 * size * rng.uniform(0.5, 1.0)), rng.uniform(0, 180))
    cv2.fillPoly(mask, [np.round(cv2.boxPoints(rect)).astype(np.int32)], 1)


def _draw_triangle(
    rng: np.random.Generator, mask: np.ndarray, centre: tuple[float, float], size: float
) -> None:
    angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3 + rng.uniform(-0.4, 0.4, 3)
    cv2.fillPoly(mask, [_polygon_points(centre, size * rng.uniform(0.7, 1.0, 3), angles)], 1)


def _draw_polygon(
    rng: np.random.Generator, mask: np.ndarray, centre: tuple[float, float], size: float
) -> None:
    """A star-convex polygon of 4-9 vertices with jittered angles and radii."""
    k = int(rng.integers(4, 10))
    angles = np.sort(
        rng.uniform(0, 2 * np.pi) + (np.arange(k) + rng.uniform(-0.3, 0.3, k)) * 2 * np.pi / k
    )
    cv2.fillPoly(mask, [_polygon_points(centre, size * rng.uniform(0.55, 1.0, k), angles)], 1)


def _draw_star(
    rng: np.random.Generator, mask: np.ndarray, centre: tuple[float, float], size: float
) -> None:
    k = int(rng.integers(4, 8))
    angles = rng.uniform(0, 2 * np.pi) + np.arange(2 * k) * np.pi / k
    radii = np.where(np.arange(2 * k) % 2 == 0, size, size * rng.uniform(0.35, 0.6))
    cv2.fillPoly(mask, [_polygon_points(centre, radii, angles)], 1)


def _draw_ring(
    rng: np.random.Generator, mask: np.ndarray, centre: tuple[float, float], size: float
) -> None:
    c = (round(centre[0]), round(centre[1]))
    cv2.circle(mask, c, round(size), 1, -1)
    cv2.circle(mask, c, round(size * rng.uniform(0.35, 0.6)), 0, -1)


def _draw_cross(
    rng: np.random.Generator, mask: np.ndarray, centre: tuple[float, float], size: float
) -> None:
    angle = rng.uniform(0, 90)
    width = 2 * size * rng.uniform(0.3, 0.5)
    for extra in (0.0, 90.0):
        rect = (centre, (2 * size, width), angle + extra)
        cv2.fillPoly(mask, [np.round(cv2.boxPoints(rect)).astype(np.int32)], 1)


STYLES: dict[str, tuple[list[ShapeDrawer], list[Texture]]] = {
    "default": (
        [_draw_ellipse, _draw_rectangle, _draw_triangle, _draw_polygon],
        [_flat, _blotches, _stripes, _gradient],
    ),
    "novel": ([_draw_star, _draw_ring, _draw_cross], [_checker, _dots]),
}


def _place(
    rng: np.random.Generator,
    size: int,
    half: float,
    placed: list[tuple[tuple[float, float], float]],
) -> tuple[float, float]:
    """A centre (x, y): uniform, or with probability OVERLAP_PROBABILITY next to an
    already placed shape so that the two overlap."""
    if not placed or rng.uniform() >= OVERLAP_PROBABILITY:
        return float(rng.uniform(0, size)), float(rng.uniform(0, size))
    (x, y), other = placed[int(rng.integers(len(placed)))]
    distance = (half + other) * rng.uniform(0.3, 0.9)
    angle = rng.uniform(0, 2 * np.pi)
    return float(x + distance * np.cos(angle)), float(y + distance * np.sin(angle))


def _colour(rng: np.random.Generator, others: list[np.ndarray]) -> np.ndarray:
    """A random RGB colour (3,) float32, at least MIN_COLOUR_DISTANCE from ``others``
    unless 50 draws found none."""
    for _ in range(50):
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        if all(np.linalg.norm(colour - o) >= MIN_COLOUR_DISTANCE for o in others):
            break
    return colour


def generate_scene(
    seed: int, index: int, style: Style = "default", size: int = SCENE_SIZE
) -> Scene:
    """Generate scene number ``index`` of the stream ``seed``; deterministic.

    Arguments:
      seed: stream seed (training and held-out sets use different seeds).
      index: scene number within the stream, >= 0.
      style: "default" (ellipses, rectangles, triangles, polygons; flat, blotchy,
        striped, gradient textures) or "novel" (stars, rings, crosses; checkerboard
        and dot textures).
      size: side of the square image in pixels; shape sizes do not scale with it.

    Returns:
      A ``Scene`` with a (size, size, 3) uint8 image and 1-5 non-empty (size, size)
      bool masks.
    """
    rng = np.random.default_rng([seed, index, list(STYLES).index(style)])
    while True:
        scene = _render(rng, style, size)
        if scene.masks:
            return scene


def _render(rng: np.random.Generator, style: Style, size: int) -> Scene:
    """Draw one scene from ``rng``; it may have no instance left visible enough."""
    shapes, textures = STYLES[style]
    background = rng.uniform(0, 255, 3).astype(np.float32)
    canvas = background + textures[int(rng.integers(len(textures)))](rng, size, size)
    colours = [background]
    drawn: list[np.ndarray] = []
    placed: list[tuple[tuple[float, float], float]] = []
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        mask = np.zeros((size, size), np.uint8)
        half = float(np.exp(rng.uniform(np.log(MIN_HALF_SIZE), np.log(MAX_HALF_SIZE))))
        centre = _place(rng, size, half, placed)
        placed.append((centre, half))
        shapes[int(rng.integers(len(shapes)))](rng, mask, centre, half)
        inside = mask.astype(bool)
        if not inside.any():
            continue
        colour = _colour(rng, colours)
        colours.append(colour)
        ys, xs = np.nonzero(inside)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        texture = textures[int(rng.integers(len(textures)))](rng, int(y1 - y0), int(x1 - x0))
        crop = inside[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1][crop] = (colour + texture)[crop]
        drawn.append(inside)
    canvas += rng.normal(0.0, rng.uniform(2, 14), canvas.shape).astype(np.float32)
    sigma = rng.uniform(0.0, 1.0)
    if sigma > MIN_BLUR_SIGMA:
        canvas = np.asarray(cv2.GaussianBlur(canvas, (0, 0), sigma), dtype=np.float32)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    masks = []
    covered = np.zeros((size, size), bool)
    for inside in reversed(drawn):
        visible = inside & ~covered
        covered |= inside
        area = int(visible.sum())
        if area >= MIN_VISIBLE_AREA and area >= MIN_VISIBLE_FRACTION * inside.sum():
            masks.append(visible)
    return Scene(image=image, masks=masks[::-1])


def generate_objects(
    seed: int, count: int, style: Style = "default", size: int = SCENE_SIZE
) -> list[Scene]:
    """Scenes 0, 1, ... of stream ``seed`` holding exactly ``count`` instances in all
    (the last scene keeps only the instances needed)."""
    scenes: list[Scene] = []
    total = 0
    while total < count:
        scene = generate_scene(seed, len(scenes), style, size)
        masks = scene.masks[: count - total]
        scenes.append(Scene(scene.image, masks))
        total += len(masks)
    return scenes
