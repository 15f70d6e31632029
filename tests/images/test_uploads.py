"""Upload checks at the service layer: content sniffing, caps, archive rules, duplicates."""

import io
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samapp.errors import ApplicationError
from samapp.models import Image
from samapp.services import uploads as uploads_module
from samapp.services.uploads import (
    archive_check,
    image_check,
    images_create,
    uploads_check,
)
from tests.conftest import jpeg_bytes, media_files, png_bytes, zip_bytes


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (wrong) body: a bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def check_zip(data: bytes, name: str = "batch.zip") -> list:
    return uploads_check(files=[(name, io.BytesIO(data))])


# ---------------------------------------------------------------- single images


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        (png_bytes(9, 7), "PNG"),
        (jpeg_bytes(9, 7), "JPEG"),
        (png_bytes(9, 7, (10, 20, 30, 40), mode="RGBA"), "PNG"),
    ],
)
def test_image_check_reads_format_and_size_from_content(content: bytes, fmt: str) -> None:
    checked = image_check(name="dir/whatever.gif", content=content)
    assert (checked.format, checked.width, checked.height) == (fmt, 9, 7)
    assert checked.name == "whatever.gif"  # directories are dropped from names
    assert len(checked.sha256) == 64


@pytest.mark.parametrize(
    "content",
    [
        b"<html><script>alert(1)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",  # a real format, not on the allow-list
        b"",
    ],
    ids=["html", "svg", "gif", "empty"],
)
def test_image_check_rejects_non_images_whatever_the_name(content: bytes) -> None:
    with pytest.raises(ApplicationError, match="not a readable image"):
        image_check(name="innocent.png", content=content)


def test_image_check_rejects_truncated_image() -> None:
    content = png_bytes(64, 64, (1, 2, 3))
    with pytest.raises(ApplicationError):
        image_check(name="cut.png", content=content[: len(content) // 2])


def test_pixel_cap_is_checked_from_the_header_before_decoding() -> None:
    with pytest.raises(ApplicationError, match="pixel limit"):
        image_check(name="bomb.png", content=png_claiming(100_000, 100_000))


def test_pixel_cap_follows_the_setting(settings) -> None:
    settings.SAM_MAX_IMAGE_PIXELS = 100
    image_check(name="ok.png", content=png_bytes(10, 10))
    with pytest.raises(ApplicationError, match="100-pixel limit"):
        image_check(name="big.png", content=png_bytes(11, 10))


def test_size_cap(settings) -> None:
    content = png_bytes(8, 8)
    settings.SAM_MAX_UPLOAD_BYTES = len(content) - 1
    with pytest.raises(ApplicationError, match="byte limit"):
        image_check(name="big.png", content=content)
    with pytest.raises(ApplicationError, match="byte limit"):
        uploads_check(files=[("big.png", io.BytesIO(content))])


@pytest.mark.parametrize(("orientation", "size"), [(1, (30, 20)), (6, (20, 30)), (8, (20, 30))])
def test_exif_orientation_gives_oriented_size(orientation: int, size: tuple[int, int]) -> None:
    checked = image_check(
        name="photo.jpg", content=jpeg_bytes(30, 20, exif_orientation=orientation)
    )
    assert (checked.width, checked.height) == size


def test_uploads_check_needs_a_file() -> None:
    with pytest.raises(ApplicationError, match="No file"):
        uploads_check(files=[])


# ---------------------------------------------------------------- archives


def test_archive_with_images_is_checked_entry_by_entry() -> None:
    data = zip_bytes(
        {
            "a.png": png_bytes(4, 3, (1, 1, 1)),
            "sub/b.jpg": jpeg_bytes(5, 6),
            "__MACOSX/._a.png": b"\x00\x05\x16\x07junk",
            "sub/.DS_Store": b"junk",
            "empty-dir/": b"",
        }
    )
    checked = check_zip(data)
    assert [(c.name, c.format, c.width, c.height) for c in checked] == [
        ("a.png", "PNG", 4, 3),
        ("b.jpg", "JPEG", 5, 6),
    ]


GOOD = png_bytes(4, 4, (9, 9, 9))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (zip_bytes({"ok.png": GOOD, "../escape.png": GOOD}), "'..'"),
        (zip_bytes({"ok.png": GOOD, "a/../../escape.png": GOOD}), "'..'"),
        (zip_bytes({"ok.png": GOOD, "/etc/cron.d/x.png": GOOD}), "absolute path"),
        (zip_bytes({"ok.png": GOOD, "C:/windows/x.png": GOOD}), "absolute path"),
        (zip_bytes({"ok.png": GOOD}, symlinks={"link.png": "/etc/passwd"}), "symbolic link"),
        (zip_bytes({"ok.png": GOOD, "inner.zip": zip_bytes({"x.png": GOOD})}), "nested archive"),
        (zip_bytes({"ok.png": GOOD, "inner.tar.gz": b"x"}), "nested archive"),
        (zip_bytes([("ok.png", GOOD), ("ok.png", png_bytes(4, 4, (1, 2, 3)))]), "duplicate"),
        (zip_bytes({"ok.png": GOOD, "zeros.png": b"\x00" * 1_000_000}), "compression ratio"),
        (zip_bytes({"ok.png": GOOD, "notes.txt": b"hello"}), "notes.txt"),
        (zip_bytes({"ok.png": GOOD, "x.png": b"<svg onload=alert(1)>"}), "x.png"),
        (b"PK\x03\x04 this is not really a zip", "not a readable zip"),
        (zip_bytes({"__MACOSX/._x": b"junk"}), "no images"),
    ],
    ids=[
        "dotdot",
        "dotdot-inside",
        "absolute",
        "drive-letter",
        "symlink",
        "nested-zip",
        "nested-tar",
        "duplicate-names",
        "ratio-bomb",
        "text-entry",
        "svg-entry",
        "garbage",
        "no-images",
    ],
)
def test_bad_archives_are_rejected_whole(data: bytes, reason: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        check_zip(data)
    assert reason in caught.value.message
    assert caught.value.message.startswith("batch.zip")


def test_corrupt_entry_is_a_clean_rejection() -> None:
    data = bytearray(zip_bytes({"a.png": GOOD}))
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 14] ^= 0xFF  # CRC-32 in the local header
    data[central + 16] ^= 0xFF  # and in the central directory
    with pytest.raises(ApplicationError, match="unreadable entry"):
        check_zip(bytes(data))


def test_entry_count_cap(settings) -> None:
    settings.SAM_MAX_ARCHIVE_ENTRIES = 3
    entries = {f"{i}.png": png_bytes(2, 2, (i, 0, 0)) for i in range(4)}
    with pytest.raises(ApplicationError, match="more than 3 entries") as caught:
        check_zip(zip_bytes(entries))
    assert caught.value.extra == {"entries": 4}
    assert len(check_zip(zip_bytes(dict(list(entries.items())[:3])))) == 3


def test_total_size_cap(settings) -> None:
    data = zip_bytes({"a.png": GOOD, "b.png": png_bytes(4, 4, (1, 2, 3))})
    settings.SAM_MAX_ARCHIVE_TOTAL_BYTES = len(GOOD) + 10
    with pytest.raises(ApplicationError, match="uncompressed is over"):
        check_zip(data)


def test_ratio_cap_follows_the_setting(settings) -> None:
    # a flat 20x20 BMP deflates about 32:1: fine under the default 100:1, refused at 10:1
    data = zip_bytes({"flat.bmp": _bmp(20, 20)})
    assert len(check_zip(data)) == 1
    settings.SAM_MAX_ARCHIVE_RATIO = 10
    with pytest.raises(ApplicationError, match="compression ratio above 10:1"):
        check_zip(data)


def _bmp(width: int, height: int) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), (5, 5, 5)).save(buffer, format="BMP")
    return buffer.getvalue()


def test_archive_detected_by_content_not_name() -> None:
    checked = uploads_check(files=[("photos.png", io.BytesIO(zip_bytes({"a.png": GOOD})))])
    assert [c.name for c in checked] == ["a.png"]


def test_archive_check_leaves_no_temporary_files(tmp_path, monkeypatch) -> None:
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    check_zip(zip_bytes({"a.png": GOOD}))
    with pytest.raises(ApplicationError):
        check_zip(zip_bytes({"a.png": GOOD, "b.png": b"not an image"}))
    assert list(scratch.iterdir()) == []


def test_archive_check_accepts_a_stream() -> None:
    checked = archive_check(name="x.zip", stream=io.BytesIO(zip_bytes({"a.png": GOOD})))
    assert checked[0].sha256 == __import__("hashlib").sha256(GOOD).hexdigest()


# ---------------------------------------------------------------- storing


def test_images_create_stores_rows_and_files_and_reports_duplicates(
    project, users, media_root
) -> None:
    first = uploads_check(files=[("a.png", io.BytesIO(GOOD)), ("b.jpg", io.BytesIO(jpeg_bytes()))])
    result = images_create(project=project, uploaded_by=users["manager"], images=first)
    assert [i.original_name for i in result.created] == ["a.png", "b.jpg"]
    assert result.duplicates == []
    assert len(media_files(media_root)) == 2
    stored = Image.objects.get(original_name="a.png")
    assert stored.file.read() == GOOD
    assert stored.uploaded_by == users["manager"]
    # the same content again, under another name and inside one upload twice
    again = uploads_check(files=[("copy.png", io.BytesIO(GOOD)), ("copy2.png", io.BytesIO(GOOD))])
    result = images_create(project=project, uploaded_by=users["manager"], images=again)
    assert result.created == []
    assert [d["name"] for d in result.duplicates] == ["copy.png", "copy2.png"]
    assert {d["existing_id"] for d in result.duplicates} == {stored.id}
    assert Image.objects.filter(project=project).count() == 2
    assert len(media_files(media_root)) == 2


def test_duplicates_within_one_upload_are_stored_once(project, users) -> None:
    checked = uploads_check(files=[("a.png", io.BytesIO(GOOD)), ("b.png", io.BytesIO(GOOD))])
    result = images_create(project=project, uploaded_by=users["owner"], images=checked)
    assert len(result.created) == 1
    assert result.duplicates[0]["existing_id"] == result.created[0].id


def test_same_content_committed_by_a_parallel_upload_is_a_duplicate(
    project, users, media_root, monkeypatch
) -> None:
    checked = uploads_check(
        files=[("a.png", io.BytesIO(GOOD)), ("b.jpg", io.BytesIO(jpeg_bytes()))]
    )
    winner = images_create(project=project, uploaded_by=users["owner"], images=checked[:1])
    # The other upload committed after this one looked for existing content.
    real = uploads_module._existing_image_ids
    calls: list[dict] = []

    def stale_then_real(**kwargs):
        calls.append(kwargs)
        return {} if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(uploads_module, "_existing_image_ids", stale_then_real)
    result = images_create(project=project, uploaded_by=users["manager"], images=checked)
    assert [i.original_name for i in result.created] == ["b.jpg"]
    assert [(d["name"], d["existing_id"]) for d in result.duplicates] == [
        ("a.png", winner.created[0].id)
    ]
    assert Image.objects.filter(project=project).count() == 2
    assert Image.objects.get(original_name="a.png").file.read() == GOOD
    assert len(media_files(media_root)) == 2  # the loser's copy of the file is gone


def test_same_content_in_another_project_is_not_a_duplicate(project, other_project, users) -> None:
    for target in (project, other_project):
        checked = uploads_check(files=[("a.png", io.BytesIO(GOOD))])
        result = images_create(project=target, uploaded_by=users["owner"], images=checked)
        assert len(result.created) == 1


def test_failed_store_removes_written_files(project, users, media_root, monkeypatch) -> None:
    checked = uploads_check(
        files=[("a.png", io.BytesIO(GOOD)), ("b.png", io.BytesIO(png_bytes(3, 3)))]
    )

    def broken(**kwargs):
        raise RuntimeError("queue down")

    monkeypatch.setattr("samapp.services.embeddings.embeddings_schedule", broken)
    with pytest.raises(RuntimeError):
        images_create(project=project, uploaded_by=users["owner"], images=checked)
    assert Image.objects.count() == 0
    assert media_files(media_root) == []


# ---------------------------------------------------------------- fuzz


SEEDS = [
    zip_bytes({"a.png": GOOD, "b.jpg": jpeg_bytes(6, 5, exif_orientation=6)}),
    png_bytes(12, 12, (4, 5, 6)),
    jpeg_bytes(12, 12, exif_orientation=3),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.none() | st.integers(0, 10_000),
    name=st.sampled_from(["x.zip", "x.png", "x.jpg", "x"]),
)
def test_mangled_uploads_fail_only_with_application_errors(seed, edits, cut, name) -> None:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        checked = uploads_check(files=[(name, io.BytesIO(bytes(data)))])
    except ApplicationError as exc:  # refusing is allowed; the refusal must say why
        assert exc.message  # noqa: PT017
    else:
        assert all(c.width > 0 and c.height > 0 for c in checked)
