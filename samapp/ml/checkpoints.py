"""Checkpoint download: progress bar, resume (HTTP Range), sha256 check, atomic rename.

The file is written to ``<dest>.part`` and renamed onto ``dest`` only once its size and
hash are right, so a reader never sees a half-written or corrupt checkpoint.
"""

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import requests
from tqdm import tqdm

from samapp.ml.registry import checkpoint_path, default_checkpoint_dir, download_url, get_spec

# on_progress(stage, done_bytes, total_bytes): stage is "downloading" (after each chunk) or
# "verifying" (once, before the hash is checked); total_bytes is None when unknown.
ProgressCallback = Callable[[str, int, int | None], None]


class TextSink(Protocol):
    """Where the progress bar goes: a text stream (sys.stderr, a management command's
    stderr wrapper)."""

    def write(self, text: str, /) -> Any: ...

    def flush(self) -> Any: ...


CHUNK_BYTES = 1 << 20
# Bytes read from the network per write: a connection that breaks off loses at most this.
READ_BYTES = 1 << 16


class CheckpointDownloadError(RuntimeError):
    """A download failed; the message is one line meant for the user."""


class OfflineError(CheckpointDownloadError):
    """The server could not be reached (no network, DNS failure, refused, timed out)."""


class ChecksumMismatchError(CheckpointDownloadError):
    """The downloaded bytes do not have the expected sha256; the file was deleted."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    size_bytes: int | None = None,
    progress: bool = True,
    progress_file: TextSink | None = None,
    timeout: float = 30.0,
    connect_timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download.

    Arguments:
      url: HTTP(S) URL.
      dest: final path; the partial file is ``dest`` + ``.part``.
      sha256: expected hex digest; None skips the check.
      size_bytes: expected size; None skips the check.
      progress: show a tqdm progress bar.
      progress_file: stream for the progress bar (default stderr).
      timeout: seconds for each read (and for connecting, unless ``connect_timeout``).
      connect_timeout: seconds to wait for the connection (an offline host fails fast).
      on_progress: called with the stage and byte counts (see ``ProgressCallback``).

    Returns:
      ``dest``. An existing ``dest`` with the right hash is kept without any network access.

    Raises:
      OfflineError: the server cannot be reached.
      ChecksumMismatchError: wrong size or hash; the partial file is deleted.
      CheckpointDownloadError: any other HTTP failure.
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if size_bytes is not None and offset > size_bytes:
        part.unlink()
        offset = 0
    if size_bytes is None or offset < size_bytes:
        timeouts = (connect_timeout or timeout, timeout)
        _fetch(url, part, offset, progress, progress_file, timeouts, on_progress)
    if on_progress is not None:
        on_progress("verifying", part.stat().st_size, size_bytes)
    _verify(part, sha256, size_bytes)
    os.replace(part, dest)
    return dest


def _fetch(
    url: str,
    part: Path,
    offset: int,
    progress: bool,
    progress_file: TextSink | None,
    timeout: tuple[float, float],
    on_progress: ProgressCallback | None,
) -> None:
    """Append the bytes from ``offset`` on to ``part`` (restart if the server ignores Range)."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416:  # the partial file is already complete
                return
            if response.status_code not in (200, 206):
                raise CheckpointDownloadError(
                    f"Download of {url} failed: HTTP {response.status_code} {response.reason}"
                )
            if response.status_code == 200:
                offset = 0
            remaining = response.headers.get("Content-Length")
            total = offset + int(remaining) if remaining is not None else None
            with (
                open(part, "r+b" if offset else "wb") as f,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=part.name.removesuffix(".part"),
                    disable=not progress,
                    file=progress_file,
                ) as bar,
            ):
                f.seek(offset)
                f.truncate()
                done = offset
                for chunk in response.iter_content(chunk_size=READ_BYTES):
                    f.write(chunk)
                    bar.update(len(chunk))
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress("downloading", done, total)
    except requests.exceptions.ChunkedEncodingError as exc:
        raise OfflineError(
            f"The connection to {url} broke off after {part.stat().st_size} bytes; retry to resume."
        ) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise OfflineError(
            f"Cannot reach {url} ({type(exc).__name__}): no network? "
            f"Copy the file to {part.with_suffix('')} by hand, or retry later to resume."
        ) from exc


def _verify(part: Path, sha256: str | None, size_bytes: int | None) -> None:
    """Raise ``ChecksumMismatchError`` (after deleting ``part``) on a wrong size or hash."""
    size = part.stat().st_size
    if size_bytes is not None and size != size_bytes:
        part.unlink()
        raise ChecksumMismatchError(
            f"Downloaded {size} bytes, expected {size_bytes}; deleted {part}. Retry the download."
        )
    if sha256 is not None and (actual := sha256_file(part)) != sha256:
        part.unlink()
        raise ChecksumMismatchError(
            f"sha256 mismatch: got {actual}, expected {sha256}; deleted {part}. Retry the download."
        )


def download_model(
    name: str,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    progress_file: TextSink | None = None,
    base_url: str | None = None,
    connect_timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Download the official checkpoint of registry model ``name``; returns its path.

    ``base_url`` names a mirror holding the files under their official names (see
    ``registry.download_url``). Raises ``CheckpointDownloadError`` for a model without a
    download URL (``sam_tiny`` ships with the repository) and whatever ``download`` raises.
    """
    spec = get_spec(name)
    url = download_url(name, base_url)
    if url is None:
        path = checkpoint_path(name, checkpoint_dir)
        state = "present" if path.is_file() else "missing; rebuild it with sam_train_tiny"
        raise CheckpointDownloadError(
            f"Model {name!r} has no download URL: it ships with the repository ({path}, {state})."
        )
    dest = Path(checkpoint_dir or default_checkpoint_dir()) / spec.filename
    return download(
        url,
        dest,
        spec.sha256,
        spec.size_bytes,
        progress,
        progress_file,
        connect_timeout=connect_timeout,
        on_progress=on_progress,
    )
