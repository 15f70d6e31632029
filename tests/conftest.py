"""Shared fixtures for the whole test suite.

World
    ``users``            dict role name -> User: owner, manager, annotator, reviewer, viewer
                         (members of ``project``), ``extra`` (a second annotator, handy as the
                         target of member changes) and ``outsider`` (no membership).
    ``project``          a project owned by ``users["owner"]`` with every role as a member and
                         two labels, ``cat`` and ``dog``.
    ``other_project``    a second project the outsider owns (for cross-project checks).
    ``make_image``       ``make_image(project, width=.., height=.., color=.., name=..)`` stores
                         an Image row and its PNG file directly (no upload checks, no embedding
                         scheduling): fast set-up for tests that need images.
    ``make_annotation``  ``make_annotation(image, label=None, box=(x0, y0, x1, y1))``.

Clients
    ``api_client``       an anonymous ``APIClient``.
    ``client_for``       ``client_for(user_or_role_name)`` -> ``APIClient`` authenticated with an
                         API token in the ``Authorization`` header (as a real script would be);
                         one token per user and test.
                         ``client_for("anonymous")`` gives an unauthenticated client.

Bytes
    ``png_bytes(width=8, height=6, color=(255, 0, 0), mode="RGB")``
    ``jpeg_bytes(width=8, height=6, color=..., exif_orientation=None)``
    ``zip_bytes({"a.png": b"...", ...}, symlinks=(), compression=zipfile.ZIP_DEFLATED)``
    These are plain functions, importable as well: ``from tests.conftest import png_bytes``.
    ``rle_box(height, width, box)`` builds a COCO compressed RLE of a filled rectangle.

Isolation
    ``media_root`` (autouse) points MEDIA_ROOT at a fresh per-test folder, so a test may assert
    what was (or was not) written there.
    ``embedding_tasks`` replaces the Celery enqueue of embedding jobs with a recorder (a list
    of embedding ids): use it in tests that commit uploads (``transactional_db``) and do not
    want the eager Celery setting to run a model.
"""

import io
import os
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

ROLES = ("owner", "manager", "annotator", "reviewer", "viewer")


# ---------------------------------------------------------------- bytes factories


def png_bytes(
    width: int = 8,
    height: int = 6,
    color: tuple[int, ...] = (255, 0, 0),
    mode: str = "RGB",
) -> bytes:
    """A valid PNG of the given size; vary ``color`` to get different sha256s."""
    buffer = io.BytesIO()
    PILImage.new(mode, (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(
    width: int = 8,
    height: int = 6,
    color: tuple[int, int, int] = (0, 128, 255),
    exif_orientation: int | None = None,
) -> bytes:
    """A valid JPEG; ``exif_orientation`` (1-8) writes the EXIF Orientation tag (0x0112)."""
    buffer = io.BytesIO()
    image = PILImage.new("RGB", (width, height), color)
    kwargs: dict[str, Any] = {}
    if exif_orientation is not None:
        exif = PILImage.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def zip_bytes(
    entries: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
    *,
    symlinks: Mapping[str, str] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A zip archive. ``entries`` may repeat names when given as (name, bytes) pairs; names
    are written verbatim (so ``../x.png`` or ``/abs.png`` stay hostile). ``symlinks`` maps an
    entry name to its link target and marks the entry as a Unix symbolic link."""
    items = entries.items() if isinstance(entries, Mapping) else entries
    buffer = io.BytesIO()
    with (
        warnings.catch_warnings(),  # duplicate names are written on purpose
        zipfile.ZipFile(buffer, "w", compression=compression) as archive,
    ):
        warnings.simplefilter("ignore", UserWarning)
        for name, data in items:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            info.external_attr = 0o100644 << 16  # a regular file
            archive.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix
            info.external_attr = 0o120777 << 16  # S_IFLNK
            archive.writestr(info, target)
    return buffer.getvalue()


def rle_box(height: int, width: int, box: tuple[int, int, int, int] = (1, 1, 4, 3)) -> dict:
    """COCO compressed RLE of an (height, width) mask with box = (x0, y0, x1, y1) filled
    (x1, y1 exclusive)."""
    import numpy as np

    from samapp.ml.masks import mask_to_rle

    mask = np.zeros((height, width), dtype=np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 1
    return mask_to_rle(mask)


@pytest.fixture(name="png_bytes")
def png_bytes_fixture() -> Callable[..., bytes]:
    return png_bytes


@pytest.fixture(name="jpeg_bytes")
def jpeg_bytes_fixture() -> Callable[..., bytes]:
    return jpeg_bytes


@pytest.fixture(name="zip_bytes")
def zip_bytes_fixture() -> Callable[..., bytes]:
    return zip_bytes


@pytest.fixture(name="rle_box")
def rle_box_fixture() -> Callable[..., dict]:
    return rle_box


# ---------------------------------------------------------------- isolation


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Run the SQLite test database from a file, as the embedded profile does, not from
    SQLite's shared-cache memory: there, a second connection (a thread in a concurrency
    test) fails at once with "database table is locked" instead of waiting its turn; with a
    file, WAL + busy timeout + IMMEDIATE transactions serialize writers as in production."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test = database.setdefault("TEST", {})
        name = str(test.get("NAME") or "")
        if not name or "memory" in name:  # unset, or pytest-xdist's per-worker memory name
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            test["NAME"] = str(Path(settings.DATA_DIR) / f"test-db-{worker}.sqlite3")


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """A fresh MEDIA_ROOT per test (default_storage follows the setting)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def embedding_tasks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record embedding ids that would be queued instead of running the (eager) task."""
    queued: list[int] = []

    def record(embedding_ids: Iterable[int], *args: Any, **kwargs: Any) -> None:
        queued.extend(embedding_ids)

    monkeypatch.setattr("samapp.services.embeddings._enqueue", record)
    return queued


@pytest.fixture
def annotation_broadcasts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every annotation log event the services broadcast after commit, one entry
    (``project_id``, ``event``, ``payload``) per event, in order."""
    sent: list[dict[str, Any]] = []

    def record(*, project_id: int, events: Any) -> None:
        sent.extend({"project_id": project_id, "event": e, "payload": p} for e, p in events)

    monkeypatch.setattr("samapp.services.annotation_events.broadcast_many", record)
    return sent


def media_files(root: Path) -> list[Path]:
    """Every regular file under ``root`` (for "nothing was written" assertions)."""
    return sorted(path for path in Path(root).rglob("*") if path.is_file())


# ---------------------------------------------------------------- users and projects


@pytest.fixture
def users(db: None) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    return {
        name: user_model.objects.create_user(username=name, password="pw-" + name)
        for name in (*ROLES, "extra", "outsider")
    }


@pytest.fixture
def project(users: dict[str, Any]) -> Any:
    from samapp.services.projects import member_add, project_create

    project = project_create(
        name="Birds",
        created_by=users["owner"],
        labels=[("cat", "#ff0000"), ("dog", "#00ff00")],
    )
    for role in ROLES[1:]:
        member_add(project=project, user=users[role], role=role)
    member_add(project=project, user=users["extra"], role="annotator")
    return project


@pytest.fixture
def other_project(users: dict[str, Any]) -> Any:
    from samapp.services.projects import project_create

    return project_create(name="Other", created_by=users["outsider"], labels=[("cat", "#0000ff")])


@pytest.fixture
def api_client() -> Any:
    from rest_framework.test import APIClient

    return APIClient()


def api_token_cache(users: dict[str, Any]) -> Callable[[Any], str]:
    """``token_for(user_or_role_name)``: the secret of an API token of that user, created on
    first use and reused after (each login would make a new one)."""
    secrets: dict[int, str] = {}

    def token_for(who: Any) -> str:
        from samapp.services.api_tokens import api_token_create

        user = users[who] if isinstance(who, str) else who
        if user.pk not in secrets:
            secrets[user.pk] = api_token_create(user=user)[1]
        return secrets[user.pk]

    return token_for


@pytest.fixture
def client_for(users: dict[str, Any]) -> Callable[[Any], Any]:
    """``client_for(user)`` or ``client_for("viewer")``: an APIClient sending an API token."""
    from rest_framework.test import APIClient

    token_for = api_token_cache(users)

    def make(who: Any) -> APIClient:
        client = APIClient()
        if who in (None, "anonymous"):
            return client
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(who)}")
        return client

    return make


@pytest.fixture
def make_image(users: dict[str, Any]) -> Callable[..., Any]:
    """Store an Image row and its PNG file, bypassing upload checks and embeddings."""
    import hashlib

    from django.core.files.base import ContentFile

    from samapp.models import Image

    counter = iter(range(1, 1_000_000))

    def make(
        project: Any,
        *,
        width: int = 8,
        height: int = 6,
        color: tuple[int, int, int] | None = None,
        name: str | None = None,
        **fields: Any,
    ) -> Image:
        n = next(counter)
        content = png_bytes(width, height, color or (n % 256, (n // 256) % 256, 7))
        image = Image(
            project=project,
            original_name=name or f"image-{n}.png",
            sha256=hashlib.sha256(content).hexdigest(),
            format="PNG",
            width=width,
            height=height,
            uploaded_by=users["owner"],
            **fields,
        )
        image.file.save(image.original_name, ContentFile(content), save=False)
        image.save()
        return image

    return make


@pytest.fixture
def make_annotation(users: dict[str, Any]) -> Callable[..., Any]:
    """Create an annotation through the service (so bbox/area are derived)."""
    from samapp.services.annotations import annotation_create

    def make(
        image: Any,
        *,
        label: Any = None,
        box: tuple[int, int, int, int] = (1, 1, 4, 3),
        author: Any = None,
        **fields: Any,
    ) -> Any:
        return annotation_create(
            image=image,
            author=author or users["annotator"],
            rle=rle_box(image.height, image.width, box),
            label=label,
            **fields,
        )

    return make
