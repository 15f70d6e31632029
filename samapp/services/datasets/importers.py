"""Dataset import: a zip of images with COCO instances, YOLO-seg labels, CVAT for images 1.1
XML or Label Studio JSON, as pre-annotations.

All or nothing: the archive is checked entry by entry (no absolute paths, no '..', no links,
bounded counts and sizes), every image is sniffed, every annotation is parsed and matched
before anything is written; the first problems are reported with where they are. Names
inside annotation files (COCO `file_name`, YOLO label paths) are only matched against the
archive's own entry names: they never reach the filesystem.
"""

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import transaction

from samapp.choices import AnnotationSource, ReviewState
from samapp.errors import ApplicationError
from samapp.ml.masks import mask_to_rle
from samapp.models import Image, Label, Project
from samapp.services.annotations import AnnotationDraft, annotations_bulk_create
from samapp.services.datasets.parse_cvat import cvat_object_to_rle, cvat_parse
from samapp.services.datasets.parse_label_studio import label_studio_parse, ls_result_to_mask
from samapp.services.datasets.parsers import (
    Problems,
    coco_parse,
    coco_segmentation_to_rle,
    yolo_classes_parse,
    yolo_labels_parse,
    yolo_names_parse,
    yolo_shape_to_rle,
)
from samapp.services.projects import label_create
from samapp.services.uploads import (
    ARCHIVE_ERRORS,
    IGNORED_ARCHIVE_NAMES,
    CheckedImage,
    _read_capped,
    archive_problems,
    image_check,
    images_create,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
CLASS_FILES = ("classes.txt", "obj.names", "names.txt")
FORMATS = ("coco", "yolo", "cvat", "labelstudio")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
INSTANCES_FILE = re.compile(r"instances_(.+)\.json", re.IGNORECASE)
LS_UPLOAD_PREFIX = re.compile(r"[0-9a-f]{8}-(.+)")


@dataclass
class ImportResult:
    format: str
    images_created: int = 0
    images_existing: int = 0
    annotations_created: int = 0
    labels_created: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


@dataclass
class _Archive:
    images: dict[str, CheckedImage] = field(default_factory=dict)  # entry path -> image
    files: dict[str, bytes] = field(default_factory=dict)  # other entries, by path
    ignored: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_name: dict[str, list[str]] = {}

    def index(self) -> None:
        for path in self.images:
            self._by_name.setdefault(PurePosixPath(path).name, []).append(path)

    def match(self, name: str) -> tuple[str | None, str]:
        """The image entry a name refers to: the entry of that path, the only entry ending
        with it, or the only one with its base name. (None, why) when there is none."""
        key = name.replace("\\", "/")
        while key.startswith("./"):
            key = key[2:]
        if key in self.images:
            return key, ""
        ending = [path for path in self.images if path.endswith("/" + key)]
        if len(ending) == 1:
            return ending[0], ""
        same_name = ending or self._by_name.get(PurePosixPath(key).name, [])
        if len(same_name) == 1:
            return same_name[0], ""
        if same_name:
            return None, f"{name!r} matches several images: {', '.join(sorted(same_name)[:3])}"
        return None, f"no image named {name!r} in the archive"


def _archive_read(name: str, stream: BinaryIO) -> _Archive:
    try:
        archive = zipfile.ZipFile(stream)
    except ARCHIVE_ERRORS as exc:
        raise ApplicationError(f"{name}: not a readable zip archive.") from exc
    problems = Problems()
    result = _Archive()
    with archive:
        for problem in archive_problems(name=name, archive=archive):
            problems.add("", problem)
        problems.raise_if_any(f"{name}: archive rejected")
        for info in archive.infolist():
            path = info.filename
            if info.is_dir() or any(part in path for part in IGNORED_ARCHIVE_NAMES):
                continue
            try:
                with archive.open(info) as source:
                    content = _read_capped(source, settings.SAM_MAX_UPLOAD_BYTES, path)
            except ApplicationError as exc:
                problems.add("", exc.message)
                continue
            except ARCHIVE_ERRORS as exc:
                problems.add(path, f"unreadable entry ({type(exc).__name__})")
                continue
            if path.lower().endswith(IMAGE_SUFFIXES):
                try:
                    result.images[path] = image_check(name=path, content=content)
                except ApplicationError as exc:
                    problems.add("", exc.message)
            elif path.lower().endswith((".json", ".txt", ".yaml", ".yml", ".names", ".xml")):
                result.files[path] = content
            else:
                result.ignored.append(path)
    problems.raise_if_any(f"{name}: archive rejected")
    result.index()
    return result


def _json_files(archive: _Archive) -> list[str]:
    return sorted(path for path in archive.files if path.lower().endswith(".json"))


def _is_cvat(content: bytes) -> bool:
    return b"<annotations" in content[:4096]


def _detect_format(archive: _Archive) -> str:
    json_files = _json_files(archive)
    if (
        len(json_files) == 1
        and archive.files[json_files[0]].lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"["
    ):
        return "labelstudio"
    if any(
        path.lower().endswith(".xml") and _is_cvat(data) for path, data in archive.files.items()
    ):
        return "cvat"
    if json_files:
        return "coco"
    if any(path.lower().endswith((".txt", ".yaml", ".yml", ".names")) for path in archive.files):
        return "yolo"
    raise ApplicationError(
        "No annotation file found: expected a COCO .json, YOLO labels with data.yaml, a CVAT "
        "annotations.xml or a Label Studio JSON export."
    )


@dataclass
class _Plan:
    """What an import will write, fully checked."""

    images: dict[str, CheckedImage] = field(default_factory=dict)
    label_names: list[tuple[str, str | None]] = field(default_factory=list)  # (name, color)
    annotations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def _coco_files(archive: _Archive) -> list[tuple[str, str]]:
    """(path, images folder) of each COCO file: annotations/instances_<subset>.json with
    images/<subset>/ (pycocotools' and datumaro's layout), or the only .json of the archive."""
    json_files = _json_files(archive)
    instances = [
        (path, match.group(1))
        for path in json_files
        if (match := INSTANCES_FILE.fullmatch(PurePosixPath(path).name))
    ]
    if instances:
        return [
            (path, str(PurePosixPath(path).parent.parent / "images" / subset))
            for path, subset in instances
        ]
    if len(json_files) != 1:
        raise ApplicationError(
            f"Expected annotations/instances_<subset>.json or one COCO .json file in the "
            f"archive, found {len(json_files)}: " + ", ".join(json_files[:5])
        )
    return [(json_files[0], "")]


def _coco_plan(archive: _Archive) -> _Plan:
    plan = _Plan(images=dict(archive.images))
    problems = Problems()
    for where, folder in _coco_files(archive):
        dataset = coco_parse(data=archive.files[where], where=where)
        path_of: dict[int, str] = {}
        for image in dataset.images:
            in_folder = f"{folder}/{image.file_name}".lstrip("/") if folder else ""
            path, why = (
                (in_folder, "") if in_folder in archive.images else archive.match(image.file_name)
            )
            at = f"{where}: images[{image.index}].file_name"
            if path is None:
                problems.add(at, why)
                continue
            checked = archive.images[path]
            if (checked.width, checked.height) != (image.width, image.height):
                problems.add(
                    f"{where}: images[{image.index}]",
                    f"size {image.width}x{image.height} differs from "
                    f"{path}'s {checked.width}x{checked.height}",
                )
                continue
            path_of[image.id] = path
        name_of = {category.id: category.name for category in dataset.categories}
        known = {name for name, _ in plan.label_names}
        plan.label_names += [(c.name, c.color) for c in dataset.categories if c.name not in known]
        for annotation in dataset.annotations:
            path = path_of.get(annotation.image_id)
            if path is None:
                continue  # its image is reported already
            checked = archive.images[path]
            try:
                rle = coco_segmentation_to_rle(
                    annotation.segmentation, checked.height, checked.width
                )
            except (ValueError, TypeError, OverflowError) as exc:
                problems.add(f"{where}: annotations[{annotation.index}].segmentation", str(exc))
                continue
            plan.annotations.append((path, name_of[annotation.category_id], rle))
    problems.raise_if_any("COCO import rejected")
    return plan


def _label_path_for(image_path: str) -> list[str]:
    path = PurePosixPath(image_path)
    candidates = []
    parts = list(path.parts)
    if "images" in parts[:-1]:
        index = len(parts) - 2 - parts[-2::-1].index("images")
        parts[index] = "labels"
        candidates.append(str(PurePosixPath(*parts).with_suffix(".txt")))
    candidates.append(str(path.with_suffix(".txt")))
    return candidates


def _yolo_names(archive: _Archive) -> list[str]:
    yamls = sorted(p for p in archive.files if p.lower().endswith((".yaml", ".yml")))
    if len(yamls) > 1:
        preferred = [p for p in yamls if PurePosixPath(p).name.lower() in ("data.yaml", "data.yml")]
        if len(preferred) != 1:
            raise ApplicationError(
                f"Several YAML files, which holds the names? {', '.join(yamls[:5])}"
            )
        yamls = preferred
    if yamls:
        return yolo_names_parse(data=archive.files[yamls[0]], where=yamls[0])
    classes = sorted(p for p in archive.files if PurePosixPath(p).name.lower() in CLASS_FILES)
    if len(classes) == 1:
        return yolo_classes_parse(data=archive.files[classes[0]], where=classes[0])
    raise ApplicationError(
        "YOLO import needs the class names: a data.yaml with 'names', or one classes.txt."
    )


def _yolo_plan(archive: _Archive) -> _Plan:
    names = _yolo_names(archive)
    plan = _Plan(images=dict(archive.images), label_names=[(name, None) for name in names])
    problems = Problems()
    claimed: set[str] = set()
    for image_path, checked in sorted(archive.images.items()):
        label_path = next((p for p in _label_path_for(image_path) if p in archive.files), None)
        if label_path is None:
            continue  # an image without objects
        claimed.add(label_path)
        shapes = yolo_labels_parse(
            data=archive.files[label_path],
            where=label_path,
            class_count=len(names),
            problems=problems,
        )
        for shape in shapes:
            try:
                rle = yolo_shape_to_rle(shape, checked.height, checked.width)
            except ValueError as exc:
                problems.add(f"{label_path}:{shape.line}", str(exc))
                continue
            plan.annotations.append((image_path, names[shape.class_id], rle))
    for path in sorted(archive.files):
        parts = PurePosixPath(path).parts
        if path.lower().endswith(".txt") and "labels" in parts[:-1] and path not in claimed:
            problems.add(path, "no image for this label file")
    problems.raise_if_any("YOLO import rejected")
    return plan


def _only_file(archive: _Archive, suffix: str, kind: str) -> str:
    files = sorted(
        path
        for path, data in archive.files.items()
        if path.lower().endswith(suffix) and (suffix != ".xml" or _is_cvat(data))
    )
    if len(files) != 1:
        raise ApplicationError(
            f"Expected one {kind} file ({suffix}) in the archive, found {len(files)}: "
            + ", ".join(files[:5])
        )
    return files[0]


def _cvat_plan(archive: _Archive) -> _Plan:
    where = _only_file(archive, ".xml", "CVAT annotations")
    dataset = cvat_parse(data=archive.files[where], where=where)
    plan = _Plan(images=dict(archive.images), label_names=dataset.labels)
    problems = Problems(where)
    for image in dataset.images:
        at = f"image[{image.index}]"
        path, why = archive.match(image.name)
        if path is None:
            problems.add(f"{at}.name", why)
            continue
        checked = archive.images[path]
        if (checked.width, checked.height) != (image.width, image.height):
            problems.add(
                at,
                f"size {image.width}x{image.height} differs from "
                f"{path}'s {checked.width}x{checked.height}",
            )
            continue
        for item in image.objects:
            rle = cvat_object_to_rle(item, image.height, image.width, problems)
            if rle is not None:
                plan.annotations.append((path, item.label, rle))
    problems.raise_if_any("CVAT import rejected")
    archive.ignored += [
        f"{where}: {count} <{tag}>" for tag, count in sorted(dataset.ignored.items())
    ]
    return plan


def _ls_image(archive: _Archive, url: str) -> tuple[str | None, str]:
    """The archive image a task's data.image names: its file name, from the path or from a
    local-files `?d=` query, URL-decoded; Label Studio's upload prefix (8 hex digits and
    a dash) is tried away when the name itself is not found."""
    parts = urlsplit(url)
    name = PurePosixPath(unquote(parse_qs(parts.query).get("d", [parts.path])[0])).name
    path, why = archive.match(name)
    upload = LS_UPLOAD_PREFIX.fullmatch(name)
    if path is None and upload:
        path, _ = archive.match(upload.group(1))
    return path, why


def _label_studio_plan(archive: _Archive) -> _Plan:
    where = _only_file(archive, ".json", "Label Studio JSON")
    plan = _Plan(images=dict(archive.images))
    problems = Problems()
    labels: dict[str, None] = {}
    for task in label_studio_parse(data=archive.files[where], where=where):
        path, why = _ls_image(archive, task.image)
        if path is None:
            problems.add(f"{where}: [{task.index}].data.image", why)
            continue
        checked = archive.images[path]
        for at, result in task.results:
            try:
                label, mask = ls_result_to_mask(result, checked.height, checked.width)
            except ValueError as exc:
                problems.add(f"{where}: {at}", str(exc))
                continue
            if mask.any():
                labels[label] = None
                plan.annotations.append((path, label, mask_to_rle(mask)))
    problems.raise_if_any("Label Studio import rejected")
    plan.label_names = [(label, None) for label in labels]
    return plan


PLANS = {
    "coco": _coco_plan,
    "yolo": _yolo_plan,
    "cvat": _cvat_plan,
    "labelstudio": _label_studio_plan,
}


def _labels_ensure(
    *, project: Project, wanted: list[tuple[str, str | None]]
) -> tuple[dict[str, Label], list[str]]:
    labels = {label.name: label for label in Label.objects.filter(project=project)}
    created = []
    for name, color in wanted:
        if name not in labels:
            kwargs = {"color": color} if color and COLOR.match(color) else {}
            labels[name] = label_create(project=project, name=name, **kwargs)
            created.append(name)
    return labels, created


def dataset_import(
    *,
    project: Project,
    user: User,
    name: str,
    stream: BinaryIO,
    format: str | None = None,
) -> ImportResult:
    """Import images and their annotations (source `imported`, review state `proposed`).

    Images already in the project (same content) are reused, not duplicated."""
    if format is not None and format not in FORMATS:
        raise ApplicationError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}.")
    archive = _archive_read(name, stream)
    if not archive.images:
        raise ApplicationError(f"{name}: the archive holds no images.")
    chosen = format or _detect_format(archive)
    plan = PLANS[chosen](archive)
    result = ImportResult(format=chosen, ignored=archive.ignored[:20])
    created: list[Image] = []
    try:
        with transaction.atomic():
            labels, result.labels_created = _labels_ensure(project=project, wanted=plan.label_names)
            upload = images_create(
                project=project, uploaded_by=user, images=list(plan.images.values())
            )
            created = upload.created
            rows = {
                image.sha256: image
                for image in Image.objects.filter(
                    project=project, sha256__in={c.sha256 for c in plan.images.values()}
                )
            }
            result.images_created = len(created)
            result.images_existing = len(rows) - len(created)
            result.annotations_created = len(
                annotations_bulk_create(
                    drafts=[
                        AnnotationDraft(
                            image=rows[plan.images[path].sha256], rle=rle, label=labels[label_name]
                        )
                        for path, label_name, rle in plan.annotations
                    ],
                    author=user,
                    source=AnnotationSource.IMPORTED,
                    review_state=ReviewState.PROPOSED,
                )
            )
    except Exception:
        for image in created:
            if image.file.name:
                default_storage.delete(image.file.name)
        raise
    return result
