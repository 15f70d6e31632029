"""Checkpoint download against a local HTTP server (no external network)."""

import hashlib
import http.server
import io
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from samapp.ml import registry
from samapp.ml.checkpoints import (
    CheckpointDownloadError,
    ChecksumMismatchError,
    OfflineError,
    download,
    download_model,
)

DATA = bytes(range(256)) * 4000  # 1 MB
SHA = hashlib.sha256(DATA).hexdigest()
ROOT = Path(__file__).resolve().parents[2]


class _Handler(http.server.BaseHTTPRequestHandler):
    """/good honours Range, /norange ignores it, /corrupt serves other bytes, else 404."""

    ranges: list[str | None] = []

    def do_GET(self):
        body = {"/good": DATA, "/norange": DATA, "/corrupt": DATA[::-1]}.get(self.path)
        if body is None:
            self.send_error(404)
            return
        range_header = self.headers.get("Range")
        type(self).ranges.append(range_header)
        start = 0
        if range_header and self.path != "/norange":
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def refused_url():
    """A URL on a local port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/good"


@pytest.fixture(autouse=True)
def _reset_ranges():
    _Handler.ranges.clear()


def test_full_download_with_progress_bar(server, tmp_path):
    out = io.StringIO()
    path = download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress_file=out)
    assert path.read_bytes() == DATA
    assert not (tmp_path / "m.pth.part").exists()
    assert "m.pth" in out.getvalue() and "100%" in out.getvalue()


def test_resume_from_truncated_partial_file(server, tmp_path):
    (tmp_path / "m.pth.part").write_bytes(DATA[:300_000])
    path = download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert path.read_bytes() == DATA
    assert _Handler.ranges == ["bytes=300000-"]


def test_restart_when_server_ignores_range(server, tmp_path):
    (tmp_path / "m.pth.part").write_bytes(b"x" * 1000)
    path = download(f"{server}/norange", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert path.read_bytes() == DATA


def test_complete_partial_file_is_verified_and_renamed(server, tmp_path):
    (tmp_path / "m.pth.part").write_bytes(DATA)
    path = download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert path.read_bytes() == DATA
    assert _Handler.ranges == []  # size already right: no request at all


def test_corrupt_download_is_deleted_and_reported(server, tmp_path):
    with pytest.raises(ChecksumMismatchError, match=r"sha256 mismatch.*deleted"):
        download(f"{server}/corrupt", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert not list(tmp_path.glob("m.pth*"))


def test_corrupt_partial_file_is_deleted_and_reported(server, tmp_path):
    (tmp_path / "m.pth.part").write_bytes(b"\0" * 1000)  # wrong bytes, then a clean resume
    with pytest.raises(ChecksumMismatchError, match="expected " + SHA):
        download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert not list(tmp_path.glob("m.pth*"))
    assert download(f"{server}/good", tmp_path / "m.pth", SHA, progress=False).read_bytes() == DATA


def test_wrong_size_is_deleted_and_reported(server, tmp_path):
    with pytest.raises(ChecksumMismatchError, match="expected 5"):
        download(f"{server}/good", tmp_path / "m.pth", None, 5, progress=False)
    assert not list(tmp_path.glob("m.pth*"))


def test_offline_gives_one_line_error(refused_url, tmp_path):
    with pytest.raises(OfflineError) as info:
        download(refused_url, tmp_path / "m.pth", SHA, progress=False)
    message = str(info.value)
    assert "\n" not in message and refused_url in message and "no network?" in message


def test_existing_verified_file_needs_no_network(refused_url, tmp_path):
    (tmp_path / "m.pth").write_bytes(DATA)
    assert download(refused_url, tmp_path / "m.pth", SHA, progress=False).read_bytes() == DATA


def test_http_error_is_reported(server, tmp_path):
    with pytest.raises(CheckpointDownloadError, match="HTTP 404"):
        download(f"{server}/missing", tmp_path / "m.pth", progress=False)


def test_bundled_model_has_nothing_to_download(tmp_path):
    with pytest.raises(CheckpointDownloadError, match="no download URL"):
        download_model("sam_tiny", tmp_path)


@pytest.fixture
def local_vit_b(server, monkeypatch):
    spec = replace(registry.MODELS["sam_vit_b"], url=f"{server}/good", sha256=SHA, size_bytes=None)
    monkeypatch.setitem(registry.MODELS, "sam_vit_b", spec)


def test_command_downloads_into_dir(local_vit_b, tmp_path):
    out = io.StringIO()
    call_command("sam_download", "sam_vit_b", "--dir", str(tmp_path), "--no-progress", stdout=out)
    assert (tmp_path / "sam_vit_b_01ec64.pth").read_bytes() == DATA
    assert "sam_vit_b" in out.getvalue()


@pytest.mark.parametrize(
    ("name", "message"),
    [("sam_vit_x", "Unknown model 'sam_vit_x'"), ("sam_tiny", "no download URL")],
)
def test_command_rejects_bad_names(tmp_path, name, message):
    with pytest.raises(CommandError, match=message):
        call_command("sam_download", name, "--dir", str(tmp_path))


def test_command_offline_is_a_clear_error(refused_url, monkeypatch, tmp_path):
    spec = replace(registry.MODELS["mobile_sam"], url=refused_url)
    monkeypatch.setitem(registry.MODELS, "mobile_sam", spec)
    with pytest.raises(CommandError, match=r"Cannot reach .*no network"):
        call_command("sam_download", "mobile_sam", "--dir", str(tmp_path), "--no-progress")


def test_command_exits_non_zero_with_message():
    result = subprocess.run(
        [sys.executable, "manage.py", "sam_download", "sam_vit_x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "backend.settings.test"},
    )
    assert result.returncode == 1
    assert "CommandError: Unknown model 'sam_vit_x'" in result.stderr
