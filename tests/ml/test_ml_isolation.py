"""``samapp.ml`` must import nothing from Django (it runs in workers and scripts alone), and the
web tier must not load the ML stack (torch, SAM's packages) to serve requests."""

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


WEB_SCRIPT = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "backend.settings.test"
import django
django.setup()
import backend.asgi
from samapp.ml.registry import MODELS, automatic_defaults
assert automatic_defaults("sam_tiny") and "sam_vit_b" in MODELS
heavy = sorted(m for m in ("torch", "segment_anything", "sam2", "onnxruntime") if m in sys.modules)
sys.exit(f"the web tier imported {heavy}" if heavy else 0)
"""


def test_the_web_tier_does_not_import_the_ml_stack():
    """A web process reads the registry (model states, downloads, defaults) but never runs a
    model: importing torch there cost ~630 MB of memory and ~3 s of start-up per process."""
    result = subprocess.run(
        [sys.executable, "-c", WEB_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


WORKER_SCRIPT = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "backend.settings.test"
import django
django.setup()
from celery.signals import worker_init
import backend.celery
assert "torch" not in sys.modules
worker_init.send(sender=None)
loaded = all(m in sys.modules for m in ("torch", "segment_anything", "sam2"))
sys.exit(0 if loaded else "the worker did not preload the ML stack")
"""


def test_a_worker_imports_the_ml_stack_before_its_pool_forks():
    result = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
