"""Hostile uploads through the API: archives are rejected whole before anything is written
outside a fresh temporary directory; images are sniffed and capped from their header; the
check's memory stays bounded (measured in a subprocess).

tests/images/test_uploads.py covers the service-level rules one by one; here every case
goes through POST /images/ with a filesystem snapshot of MEDIA_ROOT and the temp dir and a
table snapshot before and after."""

import io
import json
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import jpeg_bytes, png_bytes, zip_bytes
from tests.security.conftest import table_snapshot

ROOT = Path(__file__).resolve().parents[2]
GOOD = png_bytes(4, 4, (9, 9, 9))


def files_under(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in Path(root).rglob("*")}


def zip_with_modes(entries: dict[str, tuple[int, bytes]]) -> bytes:
    """A zip whose entries carry Unix mode bits (file type included)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (mode, data) in entries.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def zip_claiming_sizes(count: int, claimed: int) -> bytes:
    """`count` stored entries whose headers claim `claimed` bytes each (compressed and not):
    a huge total at a 1:1 ratio, though the archive itself is tiny."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"{i}.png", png_bytes(2, 2, (i, 1, 1)))
    data = bytearray(buffer.getvalue())
    position = 0
    while (position := data.find(b"PK\x01\x02", position)) != -1:
        struct.pack_into("<II", data, position + 20, claimed, claimed)  # central directory
        position += 4
    return bytes(data)


def tar_with(kind: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("ok.png")
        info.size = len(GOOD)
        archive.addfile(info, io.BytesIO(GOOD))
        link = tarfile.TarInfo("evil.png")
        if kind == "hardlink":
            link.type, link.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "device":
            link.type, link.devmajor, link.devminor = tarfile.CHRTYPE, 1, 3
        archive.addfile(link)
    return buffer.getvalue()


def zeros_zip(megabytes: int) -> bytes:
    return zip_bytes({"ok.png": GOOD, "zeros.png": b"\x00" * (megabytes * 1024 * 1024)})


def nested_bomb() -> bytes:
    inner = zeros_zip(4)
    return zip_bytes({"ok.png": GOOD, "inner.png": inner})  # an archive hiding as an image


HOSTILE_ARCHIVES = {
    "dotdot": (zip_bytes({"ok.png": GOOD, "../../escape.png": GOOD}), "'..'"),
    "dotdot-backslash": (zip_bytes({"ok.png": GOOD, "..\\..\\escape.png": GOOD}), "'..'"),
    "absolute": (zip_bytes({"ok.png": GOOD, "/tmp/abs.png": GOOD}), "absolute path"),
    "drive-letter": (zip_bytes({"ok.png": GOOD, "C:\\x.png": GOOD}), "absolute path"),
    "symlink": (zip_bytes({"ok.png": GOOD}, symlinks={"l.png": "/etc/passwd"}), "symbolic link"),
    "char-device": (
        zip_with_modes({"ok.png": (0o100644, GOOD), "dev.png": (0o020644, b"")}),
        "not a regular file",
    ),
    "block-device": (
        zip_with_modes({"ok.png": (0o100644, GOOD), "dev.png": (0o060644, b"")}),
        "not a regular file",
    ),
    "fifo": (
        zip_with_modes({"ok.png": (0o100644, GOOD), "p.png": (0o010644, b"")}),
        "not a regular file",
    ),
    "tar-hardlink": (tar_with("hardlink"), "not a readable image"),
    "tar-device": (tar_with("device"), "not a readable image"),
    "duplicate-names": (
        zip_bytes([("ok.png", GOOD), ("ok.png", png_bytes(4, 4, (1, 2, 3)))]),
        "duplicate",
    ),
    "ratio-bomb-10MB": (zeros_zip(10), "compression ratio"),
    "huge-total-3GB": (zip_claiming_sizes(2, 1_600_000_000), "uncompressed is over"),
    "too-many-entries": (
        zip_bytes({f"e{i}.png": b"" for i in range(10_001)}, compression=zipfile.ZIP_STORED),
        "more than 10000 entries",
    ),
    "nested-zip": (zip_bytes({"ok.png": GOOD, "in.zip": zip_bytes({"x.png": GOOD})}), "nested"),
    "nested-7z": (zip_bytes({"ok.png": GOOD, "in.7z": b"7z\xbc\xaf\x27\x1c"}), "nested"),
    "nested-disguised": (nested_bomb(), "inner.png"),
}


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh system temp dir for this test (uploads spill there; archives extract there)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def post(client: Any, project: Any, name: str, data: bytes) -> Any:
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client.post(
        f"/api/projects/{project.id}/images/", {"file": [upload]}, format="multipart"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(HOSTILE_ARCHIVES))
def test_hostile_archive_is_rejected_whole_and_writes_nothing(
    case: str, client_for, project, media_root: Path, scratch: Path
) -> None:
    data, reason = HOSTILE_ARCHIVES[case]
    name = "batch.tar" if case.startswith("tar-") else "batch.zip"
    manager = client_for("manager")
    before_files, before_rows = files_under(media_root, scratch), table_snapshot()

    started = time.perf_counter()
    response = post(manager, project, name, data)
    elapsed = time.perf_counter() - started

    assert response.status_code == 400, response.content[:500]
    assert reason in json.dumps(response.json()), response.json()
    assert files_under(media_root, scratch) == before_files == set()
    assert table_snapshot() == before_rows
    assert elapsed < 10, f"{case}: {elapsed:.2f}s"


@pytest.mark.django_db
def test_good_archive_is_extracted_only_inside_a_fresh_temp_dir(
    client_for, project, media_root: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samapp.services import uploads

    made: list[tuple[str, list[str]]] = []
    real = tempfile.TemporaryDirectory

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append((self.name, sorted(p.name for p in Path(self.name).iterdir())))

    monkeypatch.setattr(uploads.tempfile, "TemporaryDirectory", Recording)
    data = zip_bytes({"a/b/c.png": GOOD, "d.jpg": jpeg_bytes(5, 4)})
    response = post(client_for("manager"), project, "ok.zip", data)
    assert response.status_code == 201, response.json()
    assert len(made) == 1
    workdir, contents_at_creation = made[0]
    assert contents_at_creation == []  # fresh
    assert Path(workdir).parent == scratch
    assert Path(workdir).name.startswith("samstudio-upload-")
    assert not Path(workdir).exists()  # removed afterwards
    assert files_under(scratch) == set()
    # stored under storage-chosen names only, inside MEDIA_ROOT
    stored = {Path(p).name for p in files_under(media_root) if Path(p).is_file()}
    assert len(stored) == 2
    assert all("/" not in name and ".." not in name for name in stored)


# ---------------------------------------------------------------- images


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_claiming(width: int, height: int, extra: bytes = b"") -> bytes:
    """A PNG header claiming width x height RGB, with a tiny (useless) zlib stream."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + png_chunk(b"IEND", b"")
    )


def ztxt_bomb() -> bytes:
    """A valid 4x4 PNG carrying a zTXt chunk that inflates to 64 MB."""
    base = png_bytes(4, 4, (3, 3, 3))
    chunk = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (64 << 20), 9))
    return base[:33] + chunk + base[33:]


def html_named_png() -> bytes:
    return b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def svg_named_png() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


def polyglot() -> bytes:
    """A real PNG with HTML appended: accepted as the image it is, never served as HTML."""
    return png_bytes(5, 5, (7, 7, 7)) + b"<html><script>alert(1)</script></html>"


BAD_IMAGES = {
    "20000x20000-header": (png_claiming(20_000, 20_000), "pixel limit"),
    "100000x100000-header": (png_claiming(100_000, 100_000), "pixel limit"),
    "10000x10000-header": (png_claiming(10_000, 10_000), "pixel limit"),
    "truncated-png": (png_bytes(64, 64, (1, 2, 3))[:-40], "not a readable image"),
    "truncated-jpeg": (jpeg_bytes(64, 64)[:200], "not a readable image"),
    "html-as-png": (html_named_png(), "not a readable image"),
    "svg-as-png": (svg_named_png(), "not a readable image"),
    "ztxt-bomb": (ztxt_bomb(), "not a readable image"),
    "empty": (b"", "not a readable image"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_image_is_400_and_stores_nothing(
    case: str, client_for, project, media_root: Path, scratch: Path
) -> None:
    data, reason = BAD_IMAGES[case]
    manager = client_for("manager")
    before = table_snapshot()
    response = post(manager, project, "photo.png", data)
    assert response.status_code == 400, (case, response.content[:300])
    assert reason in response.json()["detail"], response.json()
    assert files_under(media_root, scratch) == set()
    assert table_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "data", "fmt", "size"),
    [
        ("wrong-extension.jpg", png_bytes(6, 5, (4, 4, 4)), "PNG", (6, 5)),
        ("no-extension", jpeg_bytes(6, 5), "JPEG", (6, 5)),
        ("page.html", png_bytes(6, 5, (5, 4, 4)), "PNG", (6, 5)),
        ("exif-6.jpg", jpeg_bytes(30, 20, exif_orientation=6), "JPEG", (20, 30)),
        ("polyglot.png", polyglot(), "PNG", (5, 5)),
    ],
)
def test_content_decides_format_and_size(
    name: str, data: bytes, fmt: str, size: tuple[int, int], client_for, project
) -> None:
    client = client_for("manager")
    response = post(client, project, name, data)
    assert response.status_code == 201, response.json()
    [created] = response.json()["created"]
    assert (created["format"], created["width"], created["height"]) == (fmt, *size)
    served = client.get(f"/api/projects/{project.id}/images/{created['id']}/file/")
    assert served["Content-Type"] == f"image/{fmt.lower()}"
    assert served["Content-Disposition"].startswith("attachment")
    assert served["X-Content-Type-Options"] == "nosniff"


RSS_PROBE = """
import io, json, sys, time, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.test")
import django; django.setup()
from samapp.errors import ApplicationError
from samapp.services.uploads import uploads_check
data = sys.stdin.buffer.read()
name = sys.argv[1]

def status_kib(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])

with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # resets the peak (VmHWM) to the current RSS
before = status_kib("VmRSS")
started = time.perf_counter()
try:
    uploads_check(files=[(name, io.BytesIO(data))])
    outcome = "accepted"
except ApplicationError as exc:
    outcome = "rejected: " + exc.message[:120]
after = status_kib("VmHWM")
print(json.dumps({"outcome": outcome, "delta_mib": (after - before) / 1024,
                  "peak_mib": after / 1024, "seconds": time.perf_counter() - started}))
"""

MEMORY_CASES = {
    # name -> (bytes, file name, max growth of the peak RSS in MiB)
    "20000x20000-header": (png_claiming(20_000, 20_000), "big.png", 16),
    "ztxt-bomb-64MB": (ztxt_bomb(), "z.png", 16),
    "ratio-bomb-zip-10MB": (zeros_zip(10), "b.zip", 16),
    "huge-total-zip-3GB": (zip_claiming_sizes(2, 1_600_000_000), "t.zip", 16),
    # a real image decodes fully: 2000x2000 RGB is 12 MB of pixels
    "2000x2000-real": (png_bytes(2000, 2000, (1, 2, 3)), "real.png", 64),
}
MEASURED: dict[str, dict[str, Any]] = {}


@pytest.mark.parametrize("case", list(MEMORY_CASES))
def test_check_memory_stays_bounded(case: str, tmp_path: Path) -> None:
    data, name, limit = MEMORY_CASES[case]
    done = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, name],
        input=data,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        env={**__import__("os").environ, "SAM_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]  # not killed, no traceback
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    MEASURED[case] = result
    print(case, result)
    assert result["delta_mib"] < limit, result
    assert (result["outcome"] == "accepted") is case.endswith("-real"), result
