"""Image uploads: content sniffing, size and pixel caps, archive checks, duplicate detection."""

import hashlib
import io
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

import PIL.Image
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import ImageOps

from samapp.errors import ApplicationError
from samapp.models import Image, Project
from samapp.roles import project_writable_check

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
# Operating-system litter inside archives, skipped rather than rejected.
IGNORED_ARCHIVE_NAMES = ("__MACOSX/", ".DS_Store", "Thumbs.db")

# What a corrupt or unsupported archive raises while being listed or read (zlib errors,
# bad CRCs, unsupported methods or versions, encrypted entries, lying offsets, bad names).
ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
)


@dataclass(frozen=True)
class CheckedImage:
    """An upload that passed every check, ready to store."""

    name: str
    content: bytes
    sha256: str
    format: str
    width: int
    height: int


@dataclass
class UploadResult:
    created: list[Image] = field(default_factory=list)
    duplicates: list[dict[str, object]] = field(default_factory=list)


def image_check(*, name: str, content: bytes) -> CheckedImage:
    """Validate one image by content, whatever its name claims. Raises ApplicationError."""
    if len(content) > settings.SAM_MAX_UPLOAD_BYTES:
        raise ApplicationError(
            f"{name}: {len(content)} bytes is over the {settings.SAM_MAX_UPLOAD_BYTES}-byte limit."
        )
    try:
        with PIL.Image.open(io.BytesIO(content), formats=ALLOWED_FORMATS) as probe:
            image_format = str(probe.format)
            width, height = probe.size
            if width * height > settings.SAM_MAX_IMAGE_PIXELS:
                raise ApplicationError(
                    f"{name}: {width}x{height} pixels is over the "
                    f"{settings.SAM_MAX_IMAGE_PIXELS}-pixel limit."
                )
            probe.load()  # decodes every pixel: truncated files fail here
            oriented = ImageOps.exif_transpose(probe)
            width, height = oriented.size
    except ApplicationError:
        raise
    except PIL.Image.DecompressionBombError as exc:
        # Pillow's own guard fires at open for sizes far beyond our cap.
        raise ApplicationError(
            f"{name}: over the {settings.SAM_MAX_IMAGE_PIXELS}-pixel limit ({exc})."
        ) from exc
    except Exception as exc:
        # Decoders raise whatever they like on hostile bytes (UnidentifiedImageError, OSError,
        # SyntaxError, ValueError, struct.error...), and a plugin that replaces
        # PIL.Image.open may raise more (ModuleNotFoundError for a missing codec): every
        # failure to open or decode user bytes means "not an image", never a server error.
        allowed = ", ".join(ALLOWED_FORMATS)
        raise ApplicationError(
            f"{name}: not a readable image in an allowed format ({allowed}): {exc}"
        ) from exc
    return CheckedImage(
        name=PurePosixPath(name).name[:255],
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        format=image_format,
        width=width,
        height=height,
    )


def _read_capped(stream: IO[bytes], limit: int, name: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ApplicationError(f"{name}: larger than the {limit}-byte limit.")
    return data


def _archive_entry_problem(info: zipfile.ZipInfo, seen: set[str]) -> str | None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    mode = info.external_attr >> 16
    ratio = settings.SAM_MAX_ARCHIVE_RATIO
    checks = (
        (not name, "entry without a name"),
        (
            path.is_absolute()
            or name.startswith(("/", "\\"))
            or (len(name) > 1 and name[1] == ":"),
            "absolute path",
        ),
        (".." in path.parts, "path leaves the archive ('..')"),
        (stat.S_ISLNK(mode), "symbolic link"),
        # Zips made without Unix attributes (or by zipfile.writestr) carry no file-type bits.
        (
            stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)),
            "not a regular file",
        ),
        (name in seen, "duplicate entry name"),
        (name.lower().endswith(ARCHIVE_SUFFIXES), "nested archive"),
        (
            info.compress_size and info.file_size / info.compress_size > ratio,
            f"compression ratio above {ratio}:1",
        ),
    )
    return next((f"{name}: {problem}" for failed, problem in checks if failed), None)


def archive_problems(*, name: str, archive: zipfile.ZipFile) -> list[str]:
    """The problems of every entry of `archive` (unsafe paths, links, nested archives, zip
    bombs) and of their total size. Raises ApplicationError at once for too many entries."""
    infos = archive.infolist()
    if len(infos) > settings.SAM_MAX_ARCHIVE_ENTRIES:
        raise ApplicationError(
            f"{name}: more than {settings.SAM_MAX_ARCHIVE_ENTRIES} entries.",
            {"entries": len(infos)},
        )
    problems: list[str] = []
    seen: set[str] = set()
    for info in infos:
        problem = _archive_entry_problem(info, seen)
        seen.add(info.filename)
        if problem:
            problems.append(problem)
    total = sum(info.file_size for info in infos)
    if total > settings.SAM_MAX_ARCHIVE_TOTAL_BYTES:
        problems.append(
            f"{name}: {total} bytes uncompressed is over the "
            f"{settings.SAM_MAX_ARCHIVE_TOTAL_BYTES}-byte limit"
        )
    return problems


def archive_check(*, name: str, stream: BinaryIO) -> list[CheckedImage]:
    """Check a zip archive entry by entry, then extract it into a fresh temporary directory
    and validate each image. Any problem rejects the whole archive, listing the first ones."""
    try:
        archive = zipfile.ZipFile(stream)
    except ARCHIVE_ERRORS as exc:
        raise ApplicationError(f"{name}: not a readable zip archive.") from exc
    with archive:
        entries = [
            info
            for info in archive.infolist()
            if not info.filename.endswith("/")  # ZipInfo.is_dir fails on an empty name
            and not any(part in info.filename for part in IGNORED_ARCHIVE_NAMES)
        ]
        problems = archive_problems(name=name, archive=archive)
        if problems:
            raise ApplicationError(
                f"{name}: archive rejected: {problems[0]}", {"problems": problems[:20]}
            )
        if not entries:
            raise ApplicationError(f"{name}: the archive holds no images.")
        checked: list[CheckedImage] = []
        with tempfile.TemporaryDirectory(prefix="samstudio-upload-") as workdir:
            for index, info in enumerate(entries):
                # Our own file names: nothing from the archive decides where bytes land.
                target = Path(workdir) / f"{index:06d}"
                try:
                    with archive.open(info) as source:
                        target.write_bytes(
                            _read_capped(source, settings.SAM_MAX_UPLOAD_BYTES, info.filename)
                        )
                except ARCHIVE_ERRORS as exc:
                    raise ApplicationError(
                        f"{name}: archive rejected: {info.filename}: unreadable entry ({exc})."
                    ) from exc
            for index, info in enumerate(entries):
                try:
                    content = (Path(workdir) / f"{index:06d}").read_bytes()
                    checked.append(image_check(name=info.filename, content=content))
                except ApplicationError as exc:
                    problems.append(exc.message)
        if problems:
            raise ApplicationError(
                f"{name}: archive rejected: {problems[0]}", {"problems": problems[:20]}
            )
        return checked


def uploads_check(*, files: list[tuple[str, BinaryIO]]) -> list[CheckedImage]:
    """Check every uploaded file (images or zip archives) before anything is stored."""
    if not files:
        raise ApplicationError("No file uploaded: send one or more 'file' fields.")
    checked: list[CheckedImage] = []
    for name, stream in files:
        if name.lower().endswith(".zip") or zipfile.is_zipfile(stream):
            stream.seek(0)
            checked.extend(archive_check(name=name, stream=stream))
        else:
            stream.seek(0)
            checked.append(
                image_check(
                    name=name, content=_read_capped(stream, settings.SAM_MAX_UPLOAD_BYTES, name)
                )
            )
    return checked


def _existing_image_ids(*, project: Project, sha256s: list[str]) -> dict[str, int]:
    return dict(
        Image.objects.filter(project=project, sha256__in=sha256s).values_list("sha256", "id")
    )


def images_create(
    *, project: Project, uploaded_by: User, images: list[CheckedImage]
) -> UploadResult:
    """Store checked images all or nothing; an image already in the project is reported."""
    from samapp.services.embeddings import embeddings_schedule

    project_writable_check(project)
    result = UploadResult()
    existing = _existing_image_ids(project=project, sha256s=[i.sha256 for i in images])
    stored: list[str] = []
    try:
        with transaction.atomic():
            for checked in images:
                if checked.sha256 in existing:
                    result.duplicates.append(
                        {
                            "name": checked.name,
                            "sha256": checked.sha256,
                            "existing_id": existing[checked.sha256],
                        }
                    )
                    continue
                image = Image(
                    project=project,
                    original_name=checked.name,
                    sha256=checked.sha256,
                    format=checked.format,
                    width=checked.width,
                    height=checked.height,
                    uploaded_by=uploaded_by,
                )
                image.file.save(checked.name, ContentFile(checked.content), save=False)
                stored.append(str(image.file.name))
                try:
                    with transaction.atomic():
                        image.save()
                except IntegrityError:
                    # A parallel upload of the same content committed first: a duplicate too.
                    winner = Image.objects.get(project=project, sha256=checked.sha256)
                    # A storage that overwrites gave both the same content-addressed name.
                    if stored.pop() != winner.file.name:
                        default_storage.delete(str(image.file.name))
                    existing[checked.sha256] = winner.id
                    result.duplicates.append(
                        {
                            "name": checked.name,
                            "sha256": checked.sha256,
                            "existing_id": winner.id,
                        }
                    )
                    continue
                existing[checked.sha256] = image.id
                result.created.append(image)
            embeddings_schedule(images=result.created, model_key=project.default_model_key)
    except Exception:
        for stored_name in stored:
            default_storage.delete(stored_name)
        raise
    return result
