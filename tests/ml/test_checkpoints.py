"""Checkpoint download against a local HTTP server standing in for the download host."""

import io
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

from samapp.ml import registry
from samapp.ml.checkpoints import (
    CheckpointDownloadError,
    ChecksumMismatchError,
    OfflineError,
    download,
    download_model,
)
from tests.download_host import DATA, SHA, DownloadHostHandler, download_host, refused_base_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    with download_host() as url:
        yield url


@pytest.fixture
def refused_url():
    return refused_base_url() + "/good"


@pytest.fixture(autouse=True)
def _reset_ranges():
    DownloadHostHandler.ranges.clear()


def test_full_download_with_progress_bar(server, tmp_path):
    out = io.StringIO()
    path = download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress_file=out)
    assert path.read_bytes() == DATA
    assert not (tmp_path / "m.pth.part").exists()
    assert "m.pth" in out.getvalue()
    assert "100%" in out.getvalue()


def test_resume_from_truncated_partial_file(server, tmp_path):
    (tmp_path / "m.pth.part").write_bytes(DATA[:300_000])
    path = download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert path.read_bytes() == DATA
    assert DownloadHostHandler.ranges == ["bytes=300000-"]


def test_restart_when_server_ignores_range(server, tmp_path):
    (tmp_path / "m.pth.part").write_bytes(b"x" * 1000)
    path = download(f"{server}/norange", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert path.read_bytes() == DATA


def test_complete_partial_file_is_verified_and_renamed(server, tmp_path):
    (tmp_path / "m.pth.part").write_bytes(DATA)
    path = download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert path.read_bytes() == DATA
    assert DownloadHostHandler.ranges == []  # size already right: no request at all


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
    assert "\n" not in message
    assert refused_url in message
    assert "no network?" in message


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


def test_progress_is_reported_by_stage(server, tmp_path):
    calls = []
    download(
        f"{server}/good",
        tmp_path / "m.pth",
        SHA,
        len(DATA),
        progress=False,
        on_progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    downloading = [c for c in calls if c[0] == "downloading"]
    assert [d for _, d, _ in downloading] == sorted(d for _, d, _ in downloading)
    assert downloading[-1] == ("downloading", len(DATA), len(DATA))
    assert calls[-1] == ("verifying", len(DATA), len(DATA))


def test_truncated_download_keeps_its_part_and_resumes(server, tmp_path):
    with pytest.raises(OfflineError, match="broke off"):
        download(f"{server}/truncated", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    kept = (tmp_path / "m.pth.part").stat().st_size
    assert len(DATA) // 4 < kept <= len(DATA) // 2  # what arrived, to the last full read
    path = download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert path.read_bytes() == DATA
    assert DownloadHostHandler.ranges[-1] == f"bytes={kept}-"


def test_stalled_download_times_out_then_resumes(server, tmp_path):
    with pytest.raises(OfflineError):
        download(f"{server}/slow", tmp_path / "m.pth", SHA, len(DATA), progress=False, timeout=0.5)
    kept = (tmp_path / "m.pth.part").stat().st_size
    assert 0 < kept < len(DATA)
    path = download(f"{server}/good", tmp_path / "m.pth", SHA, len(DATA), progress=False)
    assert path.read_bytes() == DATA
    assert DownloadHostHandler.ranges[-1] == f"bytes={kept}-"


def test_connect_timeout_is_separate_from_the_read_timeout(monkeypatch, tmp_path):
    seen = []

    def refuse(url, **kwargs):
        seen.append(kwargs["timeout"])
        raise requests.ConnectTimeout("timed out")

    monkeypatch.setattr(requests, "get", refuse)
    with pytest.raises(OfflineError):
        download("http://download.invalid/m", tmp_path / "m.pth", connect_timeout=2.5, timeout=30)
    assert seen == [(2.5, 30)]


def test_a_mirror_serves_the_registry_files(server, monkeypatch, tmp_path):
    monkeypatch.setitem(DownloadHostHandler.files, "mobile_sam.pt", DATA)
    spec = replace(registry.MODELS["mobile_sam"], sha256=SHA, size_bytes=len(DATA))
    monkeypatch.setitem(registry.MODELS, "mobile_sam", spec)
    assert (
        registry.download_url("mobile_sam", f"{server}/files/") == f"{server}/files/mobile_sam.pt"
    )
    assert registry.download_url("mobile_sam") == spec.url
    assert registry.download_url("sam_tiny", server) is None
    path = download_model("mobile_sam", tmp_path, progress=False, base_url=f"{server}/files")
    assert path.read_bytes() == DATA
