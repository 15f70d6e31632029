"""The checkpoints committed with the repository. No torch here: the registry, which the web
tier reads for model states and downloads, names these paths."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def bundled_checkpoint(key: str) -> Path:
    """Where the committed checkpoint of registry model ``key`` lives."""
    return WEIGHTS_DIR / f"{key}.pt"


SAM_TINY_CHECKPOINT = bundled_checkpoint("sam_tiny")
SAM2_TINY_CHECKPOINT = bundled_checkpoint("sam2_tiny")
