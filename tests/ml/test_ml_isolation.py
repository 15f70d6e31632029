"""``samapp.ml`` must import nothing from Django (it runs in workers and scripts alone)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib, pkgutil, sys
import samapp.ml
names = sorted(m.name for m in pkgutil.iter_modules(samapp.ml.__path__))
for name in names:
    importlib.import_module("samapp.ml." + name)
leaked = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
print(",".join(names))
sys.exit(f"django imported: {leaked}" if leaked else 0)
"""


def test_ml_modules_do_not_import_django():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    imported = result.stdout.strip().split(",")
    for name in ["automatic", "checkpoints", "embedding", "masks", "onnx_export", "registry"]:
        assert name in imported
