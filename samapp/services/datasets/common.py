"""Shared pieces of the dataset formats: options, file names, palettes, the zip writer."""

import hashlib
import io
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any, Protocol

from samapp.choices import ExportFormat, ImageStatus, ReviewState
from samapp.errors import ApplicationError
from samapp.ml.masks import is_hole, mask_to_polygons, rle_to_mask
from samapp.models import Image, Label, Project
from samapp.selectors.datasets import DEFAULT_REVIEW_STATES, DatasetFilters, DatasetItem

# Fixed entry timestamps: the same data gives the same archive bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MAX_TOLERANCE = 50.0
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+\- ]+")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportOptions:
    """Checked export options; `as_dict` is what the job row stores."""

    mask_format: str = "rle"  # COCO, CVAT, Label Studio: "rle" (lossless) or "polygons"
    holes: str = "rle"  # polygons of a mask with holes: "rle" (kept raster) or "fill" (lost)
    tolerance: float = 1.0  # polygon simplification, pixels (Douglas-Peucker epsilon)
    crowd_rle: bool = False  # COCO: mark RLE annotations iscrowd=1 (COCOeval ignores crowds)
    val_split: float = 0.0  # YOLO / VOC: fraction of images in the validation split
    include_images: bool = True
    filters: DatasetFilters = field(default_factory=DatasetFilters)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mask_format": self.mask_format,
            "holes": self.holes,
            "tolerance": self.tolerance,
            "crowd_rle": self.crowd_rle,
            "val_split": self.val_split,
            "include_images": self.include_images,
            "filters": self.filters.as_dict(),
        }


def _number(value: Any, where: str, low: float, high: float, problems: list[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.append(f"{where}: expected a number from {low} to {high}, got {value!r}")
        return low
    return float(value)


def _bool(value: Any, where: str, problems: list[str]) -> bool:
    if not isinstance(value, bool):
        problems.append(f"{where}: expected true or false, got {value!r}")
        return False
    return value


def _choices(
    value: Any, where: str, allowed: tuple[str, ...], problems: list[str]
) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v in allowed for v in value):
        problems.append(f"{where}: expected a list drawn from {', '.join(allowed)}")
        return ()
    return tuple(dict.fromkeys(value))


def _ids(value: Any, where: str, problems: list[str]) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        problems.append(f"{where}: expected a list of positive integer ids")
        return ()
    return tuple(dict.fromkeys(value))


FILTER_KEYS = ("status", "images", "labels", "review_states", "only_annotated")
OPTION_KEYS = (
    "mask_format",
    "holes",
    "tolerance",
    "crowd_rle",
    "val_split",
    "include_images",
    "filters",
)


def filters_clean(raw: Any, problems: list[str]) -> DatasetFilters:
    if raw is None:
        return DatasetFilters()
    if not isinstance(raw, dict):
        problems.append("options.filters: expected an object")
        return DatasetFilters()
    for key in sorted(set(raw) - set(FILTER_KEYS)):
        problems.append(f"options.filters.{key}: unknown filter (known: {', '.join(FILTER_KEYS)})")
    where = "options.filters."
    return DatasetFilters(
        status=_choices(
            raw.get("status", []), where + "status", tuple(ImageStatus.values), problems
        ),
        images=_ids(raw.get("images", []), where + "images", problems),
        labels=_ids(raw.get("labels", []), where + "labels", problems),
        review_states=_choices(
            raw.get("review_states", list(DEFAULT_REVIEW_STATES)),
            where + "review_states",
            tuple(ReviewState.values),
            problems,
        ),
        only_annotated=_bool(raw.get("only_annotated", False), where + "only_annotated", problems),
    )


def export_options_clean(
    *, format: str, options: Any, default_tolerance: float = 1.0
) -> ExportOptions:
    """Check user-supplied options for `format`; every problem is reported at once."""
    problems: list[str] = []
    if format not in ExportFormat.values:
        problems.append(f"format: expected one of {', '.join(ExportFormat.values)}, got {format!r}")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ApplicationError(
            "options: expected an object.", {"problems": ["options: not an object"]}
        )
    for key in sorted(set(options) - set(OPTION_KEYS)):
        problems.append(f"options.{key}: unknown option (known: {', '.join(OPTION_KEYS)})")
    mask_format = options.get("mask_format", "rle")
    if mask_format not in ("rle", "polygons"):
        problems.append(f"options.mask_format: expected 'rle' or 'polygons', got {mask_format!r}")
    holes = options.get("holes", "rle")
    if holes not in ("rle", "fill"):
        problems.append(f"options.holes: expected 'rle' or 'fill', got {holes!r}")
    tolerance = _number(
        options.get("tolerance", default_tolerance),
        "options.tolerance",
        0.0,
        MAX_TOLERANCE,
        problems,
    )
    val_split = _number(options.get("val_split", 0.0), "options.val_split", 0.0, 1.0, problems)
    cleaned = ExportOptions(
        mask_format=mask_format,
        holes=holes,
        tolerance=tolerance,
        crowd_rle=_bool(options.get("crowd_rle", False), "options.crowd_rle", problems),
        val_split=val_split,
        include_images=_bool(
            options.get("include_images", True), "options.include_images", problems
        ),
        filters=filters_clean(options.get("filters"), problems),
    )
    if problems:
        raise ApplicationError(
            f"Invalid export options: {problems[0]}", {"problems": problems[:20]}
        )
    return cleaned


@dataclass(frozen=True)
class ExportRun:
    """What a format writer gets: the archive, the project's labels and items (images with
    their annotations, streamed), the checked options, and a per-image progress callback."""

    sink: "ZipSink"
    project: Project
    labels: list[Label]
    items: Iterable[DatasetItem]
    options: ExportOptions
    progress: Callable[[], None]


class ExportWriter(Protocol):
    """A dataset format: writes one run's labels and items into `run.sink` (one module per
    format, `export_<format>.py`; `exports.WRITERS` maps `ExportFormat` to it)."""

    def __call__(self, run: ExportRun, /) -> None: ...


# ---------------------------------------------------------------- polygons


def polygon_rings(rle: dict[str, Any], options: ExportOptions) -> list[list[float]]:
    """The exterior rings (pixel-edge polygons) of a mask for formats whose readers fill
    every ring, or [] when the mask has holes and `options.holes` keeps it raster."""
    rings = mask_to_polygons(rle_to_mask(rle), options.tolerance)
    if options.holes == "rle" and any(is_hole(ring) for ring in rings):
        return []
    return [ring for ring in rings if not is_hole(ring)]


# ---------------------------------------------------------------- names, splits, colors


SUFFIXES = {
    "JPEG": (".jpg", ".jpeg"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "TIFF": (".tif", ".tiff"),
    "BMP": (".bmp",),
}


class NameRegistry:
    """Export file names: the image's own name made safe and unique by stem (ignoring case),
    so images/x.png, labels/x.txt and masks/x.png never collide between images."""

    def __init__(self) -> None:
        self._stems: set[str] = set()

    def name_for(self, image: Image) -> str:
        base = PurePosixPath(image.original_name.replace("\\", "/")).name
        base = UNSAFE_NAME_CHARS.sub("_", base).strip(" .")[:200] or f"image_{image.id}"
        suffixes = SUFFIXES.get(image.format.upper(), ("." + image.format.lower(),))
        path = PurePosixPath(base)
        if path.suffix.lower() in suffixes and path.stem:
            stem, suffix = path.stem, path.suffix
        else:
            stem, suffix = base, suffixes[0]  # the name keeps its dots, the real type is added
        candidate, n = stem, 1
        while candidate.casefold() in self._stems:
            n += 1
            candidate = f"{stem}_{n}"
        self._stems.add(candidate.casefold())
        return candidate + suffix


def stem_of(name: str) -> str:
    return PurePosixPath(name).stem


def split_of(image: Image, val_split: float) -> str:
    """'train' or 'val', decided by the image content hash: stable whatever the order."""
    if val_split <= 0:
        return "train"
    position = int(hashlib.sha256(image.sha256.encode()).hexdigest()[:8], 16) / 0x1_0000_0000
    return "val" if position < val_split else "train"


def hex_rgb(color: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", color or "")
    if not match:
        return (255, 0, 0)
    value = int(match.group(1), 16)
    return (value >> 16 & 255, value >> 8 & 255, value & 255)


def voc_color(index: int) -> tuple[int, int, int]:
    """Pascal VOC's color map (bit interleaving of the index)."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= ((index >> 0) & 1) << shift
        g |= ((index >> 1) & 1) << shift
        b |= ((index >> 2) & 1) << shift
        index >>= 3
    return (r, g, b)


def class_palette(labels: list[Label]) -> list[int]:
    """768 palette entries: 0 background (black), i the color of labels[i-1], the rest the
    VOC color map (255, VOC's 'void', white-ish). Readers map mask colors back to classes,
    so a label whose color is taken already gets the first VOC color still free."""
    colors = [voc_color(i) for i in range(256)]
    colors[0] = (0, 0, 0)
    colors[255] = (224, 224, 192)
    taken = {colors[0], colors[255]}
    spare = (color for color in colors[1:255] if color not in taken)
    for index, label in enumerate(labels, start=1):
        color = hex_rgb(label.color)
        colors[index] = color if color not in taken else next(c for c in spare if c not in taken)
        taken.add(colors[index])
    return [channel for color in colors for channel in color]


def instance_palette() -> list[int]:
    colors = [voc_color(i) for i in range(256)]
    colors[255] = (224, 224, 192)
    return [channel for color in colors for channel in color]


# ---------------------------------------------------------------- streaming zip writer


class ZipSink:
    """A zip archive written entry by entry into a temporary file (never held in memory)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive

    def _info(self, name: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o100644 << 16
        return info

    def write_bytes(self, name: str, data: bytes, *, compress: bool = True) -> None:
        self.archive.writestr(self._info(name, compress), data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def write_stream(self, name: str, source: IO[bytes], *, compress: bool = False) -> None:
        with self.archive.open(self._info(name, compress), "w", force_zip64=True) as target:
            shutil.copyfileobj(source, target, 1024 * 1024)

    def write_image(self, name: str, image: Image) -> None:
        with image.file.open("rb") as source:
            self.write_stream(name, source)

    @contextmanager
    def open_text(self, name: str) -> Iterator[IO[str]]:
        """A compressed UTF-8 text entry written in pieces."""
        with (
            self.archive.open(self._info(name, True), "w", force_zip64=True) as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as text,
        ):
            yield text
