"""The embedded profile keeps its data private: the data folder and what is created in it
(database, media, broker spool, channel spool) are 0700 folders and 0600 files, and a data
folder or database left 0755/0644 by an older install is closed at start."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from django.conf import settings

# Starts the embedded profile on a fresh data folder and writes through each component the
# way the server and the worker do; prints the modes of everything under the folder.
SCRIPT = """
import json, os, stat, sys
from pathlib import Path
import django
django.setup()
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from backend.celery import app, ensure_broker_spool
connection.cursor().execute("CREATE TABLE IF NOT EXISTS t (x)")
default_storage.save("images/1/a.png", ContentFile(b"x"))
get_channel_layer()._spool_write("project-1", {"type": "x"})
ensure_broker_spool()
with app.connection_for_write() as conn:
    app.send_task("samapp.tasks.nothing", connection=conn)
data = Path(os.environ["SAM_DATA_DIR"])
paths = [data, *data.rglob("*")]
print(json.dumps({str(p.relative_to(data)): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths}))
"""


def _start(data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings.local",
        "SAM_DATA_DIR": str(data_dir),
        "CELERY_BROKER_URL": "filesystem://",
        "REDIS_URL": "",
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modes: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modes


def _assert_private(modes: dict[str, str], data_dir: Path) -> None:
    for name, mode in modes.items():
        path = data_dir / name
        expected = "0o700" if path.is_dir() else "0o600"
        assert mode == expected, (name, mode)


def test_a_fresh_data_folder_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    modes = _start(data_dir)
    for created in ("db.sqlite3", "media/images/1/a.png", "broker", "channels"):
        assert created in modes, sorted(modes)
    assert any(name.startswith("broker/") for name in modes), sorted(modes)
    assert any(name.startswith("channels/") for name in modes), sorted(modes)
    _assert_private(modes, data_dir)
    print(f"{len(modes)} paths under the data folder, all 0700/0600")


def test_an_older_install_is_closed_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    database = data_dir / "db.sqlite3"
    database.write_bytes(b"")
    database.chmod(0o644)
    modes = _start(data_dir)
    assert modes["."] == "0o700"
    assert modes["db.sqlite3"] == "0o600"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
