"""The checkpoints committed with the repository. No torch here: the registry, which the web
tier reads for model states and downloads, names these paths."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SAM_TINY_CHECKPOINT = WEIGHTS_DIR / "sam_tiny.pt"
SAM2_TINY_CHECKPOINT = WEIGHTS_DIR / "sam2_tiny.pt"
