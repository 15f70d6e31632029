"""Shared browser-bench plumbing: a loopback static server with cross-origin isolation headers
and a headless Debian Chromium driven by playwright-core (from frontend/node_modules).

The page under test sets ``window.__result`` (any JSON value) or ``window.__error`` when done;
``run_page`` returns that value.
"""

import functools
import json
import mimetypes
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ORT_DIST = ROOT / "frontend" / "node_modules" / "onnxruntime-web" / "dist"
PLAYWRIGHT = ROOT / "frontend" / "node_modules" / "playwright-core" / "index.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
mimetypes.add_type("application/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


def ensure_frontend_modules() -> None:
    """Install frontend/node_modules (npm ci) when missing: the page loads onnxruntime-web."""
    if not ORT_DIST.is_dir() or not PLAYWRIGHT.is_file():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT / "frontend", check=True)


class _Handler(SimpleHTTPRequestHandler):
    """Serves /bench/ (this folder), /ort/ (onnxruntime-web dist) and /data/ (a temp folder)."""

    mounts: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, folder in self.mounts.items():
            if path.startswith(prefix):
                target = (folder / path[len(prefix) :]).resolve()
                if folder.resolve() in target.parents or target == folder.resolve():
                    return str(target)
        return str(ROOT / "nonexistent")

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(data_dir: Path) -> Iterator[str]:
    """Serve on 127.0.0.1 (ephemeral port); yields the base URL."""
    mounts = {"/bench/": Path(__file__).resolve().parent, "/ort/": ORT_DIST, "/data/": data_dir}
    handler = functools.partial(type("H", (_Handler,), {"mounts": mounts}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_page(url: str, timeout_s: float = 600) -> Any:
    """Open ``url`` in headless Chromium and return the JSON the page publishes."""
    script = Path(__file__).resolve().parent / "run_page.mjs"
    proc = subprocess.run(
        ["node", str(script), url, str(int(timeout_s * 1000))],
        capture_output=True,
        text=True,
        timeout=timeout_s + 60,
        env={**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT), "CHROMIUM": CHROMIUM},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"browser run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
