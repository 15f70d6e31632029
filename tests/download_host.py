"""A local HTTP server standing in for the checkpoint download host (no external network).

Paths: ``/good`` honours Range; ``/norange`` ignores it; ``/corrupt`` serves other bytes;
``/truncated`` announces the full length but closes the connection halfway; ``/slow`` sends
half, then stalls for ``STALL_SECONDS`` (longer than the tests' read timeout) before the rest;
``/files/NAME`` serves ``FILES[NAME]`` with Range (a mirror: ``SAM_DOWNLOAD_BASE_URL``);
``/trickle/NAME`` announces ``trickle[NAME]`` bytes and sends zeros slowly until ``/cut`` is
requested, then closes the connection (a download that stays under way, then breaks);
anything else is a 404. ``ranges`` records the Range header of each request.
"""

import contextlib
import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

DATA = bytes(range(256)) * 4000  # 1 MB
SHA = hashlib.sha256(DATA).hexdigest()
STALL_SECONDS = 3.0
TRICKLE_CHUNK = 64 * 1024
TRICKLE_EVERY_SECONDS = 0.25


class DownloadHostHandler(http.server.BaseHTTPRequestHandler):
    ranges: list[str | None] = []
    files: dict[str, bytes] = {}
    trickle: dict[str, int] = {}
    cut = threading.Event()

    def _trickle(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent + TRICKLE_CHUNK < size and not type(self).cut.wait(TRICKLE_EVERY_SECONDS):
                self.wfile.write(bytes(TRICKLE_CHUNK))
                self.wfile.flush()
                sent += TRICKLE_CHUNK
        self.close_connection = True

    def _body(self) -> bytes | None:
        if self.path.startswith("/files/"):
            return type(self).files.get(self.path.removeprefix("/files/"))
        return {
            "/good": DATA,
            "/norange": DATA,
            "/corrupt": DATA[::-1],
            "/truncated": DATA,
            "/slow": DATA,
        }.get(self.path)

    def do_GET(self) -> None:
        if self.path == "/cut":
            type(self).cut.set()
            self.send_response(204)
            self.end_headers()
            return
        size = type(self).trickle.get(self.path.removeprefix("/trickle/"))
        if self.path.startswith("/trickle/") and size is not None:
            self._trickle(size)
            return
        body = self._body()
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
        rest = body[start:]
        if self.path in ("/truncated", "/slow") and start == 0:
            self.wfile.write(rest[: len(rest) // 2])
            self.wfile.flush()
            if self.path == "/truncated":
                self.close_connection = True
                return
            time.sleep(STALL_SECONDS)
            rest = rest[len(rest) // 2 :]
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(rest)  # the client may have given up (read timeout)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def download_host() -> Iterator[str]:
    """Serve ``DownloadHostHandler`` on a free local port; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DownloadHostHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def refused_base_url() -> str:
    """A base URL on a local port nobody listens on (connection refused: offline)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
