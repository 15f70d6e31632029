"""Every model the app can run: builder, official checkpoint URL, sha256 and size.

``load_model(name)`` returns a ``segment_anything.modeling.Sam`` for each SAM entry, so SAM's
own ``SamPredictor`` and ``SamAutomaticMaskGenerator`` work on it unchanged, and the ``sam2``
package's ``SAM2Base`` for each SAM 2.1 entry (family ``"sam2"``: ``SAM2ImagePredictor``).
Builders are imported when a model is built: reading the registry (the web tier's model
states, downloads and defaults) loads no torch.

Hashes and sizes of the official files were not measured here (no network); they are the
values published by many independent projects that pin these files (e.g. micro-sam's
``_CHECKSUMS`` and several download scripts), and agree with one another. The SAM 2.1 values
are the Git LFS pointers (sha256 and size) of Meta's own ``facebook/sam2.1-hiera-*`` Hugging
Face repositories, which agree with several mirrors of the ``dl.fbaipublicfiles.com`` files.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from samapp.ml.bundled import bundled_checkpoint
from samapp.ml.model_keys import registry_model_key

if TYPE_CHECKING:
    import torch
    from sam2.modeling.sam2_base import SAM2Base
    from segment_anything.modeling import Sam

REPO_ROOT = Path(__file__).resolve().parents[2]
RANDOM_INIT_SEED = 0

# What ``load_model`` returns: SAM's model or SAM 2's (see ``ModelSpec.family``).
AnySam: TypeAlias = "Sam | SAM2Base"
Family = Literal["sam", "sam2"]


class UnknownModelError(KeyError):
    """The name is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint file for a model; the message names the download command."""


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
      name: registry key, also the model key stored with embeddings and annotations.
      title: human-readable name.
      build: builds the architecture with random weights, in eval mode, on the CPU.
      family: ``"sam"`` (a ``Sam``; its checkpoint is a bare state dict) or ``"sam2"`` (a
        ``SAM2Base``; its checkpoint holds ``{"model": state_dict}``).
      filename: checkpoint file name inside the checkpoint directory.
      url: official download URL, or None for a checkpoint shipped with the repository.
      sha256: hex digest of the official file (None when not published).
      size_bytes: size of the official file (None when not published).
      bundled_path: checkpoint committed to the repository, used when present.
      automatic: segment-everything defaults (``AutomaticMaskGenerator`` arguments) for
        this model, used where a request and the project's settings leave one unset.
      licence: licence of the checkpoint.
      source: where the weights come from (paper or repository).
      runs_on: what the worker needs ("CPU", "GPU recommended").
    """

    name: str
    title: str
    build: Callable[[], AnySam]
    filename: str
    url: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    bundled_path: Path | None = None
    automatic: dict[str, Any] = field(default_factory=dict)
    licence: str = "Apache-2.0"
    source: str = "https://github.com/facebookresearch/segment-anything"
    runs_on: str = "CPU"
    family: Family = "sam"


def _builder(module: str, function: str, *args: Any) -> Callable[[], AnySam]:
    """``module.function(*args)``, imported when called: the registry itself imports no torch,
    so the web tier reads it (model states, downloads) without loading the ML stack."""

    def build() -> AnySam:
        built: AnySam = getattr(importlib.import_module(module), function)(*args)
        return built

    return build


# SAM's own SamAutomaticMaskGenerator defaults, calibrated on natural images.
_SAM_AUTOMATIC = {"points_per_side": 32, "pred_iou_thresh": 0.88, "stability_score_thresh": 0.95}


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
# SAM2AutomaticMaskGenerator's own defaults.
_SAM2_AUTOMATIC = {"points_per_side": 32, "pred_iou_thresh": 0.8, "stability_score_thresh": 0.95}


def _sam_spec(
    key: str,
    title: str,
    build: Callable[[], AnySam],
    filename: str,
    sha256: str,
    size_bytes: int,
    runs_on: str = "GPU",
) -> ModelSpec:
    """An official SAM (ViT) checkpoint from Meta's download host."""
    return ModelSpec(
        name=key,
        title=title,
        build=build,
        filename=filename,
        url=_SAM_URL + filename,
        sha256=sha256,
        size_bytes=size_bytes,
        automatic=_SAM_AUTOMATIC,
        runs_on=runs_on,
    )


def _sam2_spec(
    key: str, title: str, sha256: str, size_bytes: int, runs_on: str = "CPU"
) -> ModelSpec:
    """An official SAM 2.1 checkpoint from Meta's download host."""
    return ModelSpec(
        name=key,
        title=title,
        build=_builder("samapp.ml.sam2_models", "build_sam2_model_for", key),
        filename=f"{key}.pt",
        url=_SAM2_URL + f"{key}.pt",
        sha256=sha256,
        size_bytes=size_bytes,
        automatic=_SAM2_AUTOMATIC,
        source="https://github.com/facebookresearch/sam2",
        runs_on=runs_on,
        family="sam2",
    )


# The project-trained tiny models' segment-everything defaults, calibrated with
# bench/automatic_defaults.py on the held-out generated scenes (docs/models.md): their soft
# masks fail SAM's and SAM 2's stability filter (0.95 kept almost none), looser filters add
# masks far faster than shapes, and 16 points per side find as many shapes as 32.
_TINY_AUTOMATIC = {"points_per_side": 16, "pred_iou_thresh": 0.6, "stability_score_thresh": 0.7}


def _train_command(family: Family) -> str:
    """The command that trains a family's tiny model again."""
    return "python manage.py sam_train_tiny" + (" --family sam2" if family == "sam2" else "")


def _tiny_spec(
    key: str,
    title: str,
    build: Callable[[], AnySam],
    automatic: dict[str, Any],
    family: Family = "sam",
) -> ModelSpec:
    """A model trained here on generated shapes, its checkpoint committed with the repository."""
    bundled_path = bundled_checkpoint(key)
    return ModelSpec(
        name=key,
        title=title,
        build=build,
        filename=bundled_path.name,
        bundled_path=bundled_path,
        automatic=automatic,
        source=f"trained here on generated shapes ({_train_command(family)})",
        family=family,
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _sam_spec(
            "sam_vit_b",
            "SAM ViT-B (91M)",
            _builder("segment_anything", "build_sam_vit_b"),
            "sam_vit_b_01ec64.pth",
            "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            375_042_383,
            runs_on="CPU (slow: ~1 min per image on 2 cores), GPU recommended",
        ),
        _sam_spec(
            "sam_vit_l",
            "SAM ViT-L (308M)",
            _builder("segment_anything", "build_sam_vit_l"),
            "sam_vit_l_0b3195.pth",
            "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            1_249_524_607,
        ),
        _sam_spec(
            "sam_vit_h",
            "SAM ViT-H (636M)",
            _builder("segment_anything", "build_sam_vit_h"),
            "sam_vit_h_4b8939.pth",
            "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            2_564_550_879,
        ),
        ModelSpec(
            name="mobile_sam",
            title="MobileSAM (TinyViT-5M)",
            build=_builder("samapp.ml.mobile_sam", "build_mobile_sam"),
            filename="mobile_sam.pt",
            url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
            sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
            size_bytes=40_728_226,
            automatic=_SAM_AUTOMATIC,
            source="https://github.com/ChaoningZhang/MobileSAM",
        ),
        _tiny_spec(
            "sam_tiny",
            "SAM tiny (project-trained, 192 px)",
            _builder("samapp.ml.tiny", "build_sam_tiny"),
            # One crop layer (four half-size crops, 8 points per side each) shows small shapes
            # to the encoder at twice the scale: 59.8 % of the shapes found instead of 53.6 %.
            {**_TINY_AUTOMATIC, "crop_n_layers": 1, "crop_n_points_downscale_factor": 2},
        ),
        _tiny_spec(
            "sam2_tiny",
            "SAM 2 tiny (project-trained, 256 px)",
            _builder("samapp.ml.sam2_tiny", "build_sam2_tiny"),
            _TINY_AUTOMATIC,
            family="sam2",
        ),
        _sam2_spec(
            "sam2.1_hiera_tiny",
            "SAM 2.1 Hiera-T (39M)",
            "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
            156_008_466,
        ),
        _sam2_spec(
            "sam2.1_hiera_small",
            "SAM 2.1 Hiera-S (46M)",
            "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
            184_416_285,
        ),
        _sam2_spec(
            "sam2.1_hiera_base_plus",
            "SAM 2.1 Hiera-B+ (81M)",
            "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
            323_606_802,
            runs_on="CPU (slow), GPU recommended",
        ),
        _sam2_spec(
            "sam2.1_hiera_large",
            "SAM 2.1 Hiera-L (224M)",
            "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
            898_083_611,
            runs_on="GPU",
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; raises ``UnknownModelError`` listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownModelError(f"Unknown model {name!r}; known models: {known}") from None


def model_family(model_key: str) -> Family | None:
    """``"sam"`` or ``"sam2"`` for a registry key or a fine-tuned version key (its base
    model's); None for an unknown key."""
    spec = MODELS.get(registry_model_key(model_key))
    return None if spec is None else spec.family


def automatic_defaults(name: str) -> dict[str, Any]:
    """Segment-everything defaults of registry model ``name`` (a copy)."""
    return dict(get_spec(name).automatic)


def download_url(name: str, base_url: str | None = None) -> str | None:
    """Where the checkpoint of ``name`` is downloaded from: ``base_url`` + its file name when
    a mirror is configured, else its official URL (None for a bundled checkpoint)."""
    spec = get_spec(name)
    if spec.url is None:
        return None
    if base_url:
        return base_url.rstrip("/") + "/" + spec.filename
    return spec.url


def default_checkpoint_dir() -> Path:
    """``$SAM_CHECKPOINT_DIR``, else ``$SAM_DATA_DIR/checkpoints``, else ``var/checkpoints``."""
    if path := os.environ.get("SAM_CHECKPOINT_DIR"):
        return Path(path)
    return Path(os.environ.get("SAM_DATA_DIR", REPO_ROOT / "var")) / "checkpoints"


def checkpoint_path(name: str, checkpoint_dir: str | Path | None = None) -> Path:
    """Where the checkpoint of ``name`` lives (it may not exist yet).

    A file in ``checkpoint_dir`` wins over a checkpoint bundled with the repository.
    """
    spec = get_spec(name)
    path = Path(checkpoint_dir or default_checkpoint_dir()) / spec.filename
    if not path.exists() and spec.bundled_path is not None:
        return spec.bundled_path
    return path


def _fetch_hint(spec: ModelSpec) -> str:
    if spec.url is None:
        return f"It ships with the repository; rebuild it with: {_train_command(spec.family)}"
    return f"Download it with: python manage.py sam_download {spec.name}"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_model(
    name: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    checkpoint_dir: str | Path | None = None,
    random_init: bool = False,
) -> AnySam:
    """Build model ``name`` and load its checkpoint.

    Arguments:
      name: a key of ``MODELS``.
      device: ``"cpu"``, ``"cuda"``, ``"auto"`` (CUDA when available) or a ``torch.device``.
      dtype: parameter dtype; None keeps float32. Half precision on GPU is better obtained
        with autocast (``embedding.compute_embeddings`` does that) than with ``torch.float16``.
      checkpoint_dir: directory holding downloaded checkpoints (default
        ``default_checkpoint_dir()``).
      random_init: skip loading and keep random weights (tests, shape checks). Never implied.

    Returns:
      The ``Sam`` (or, for a ``"sam2"`` entry, the ``SAM2Base``) in eval mode on ``device``.

    Raises:
      UnknownModelError: ``name`` is not registered.
      CheckpointNotFoundError: the checkpoint file is missing; the message names
        ``python manage.py sam_download NAME``.
      RuntimeError: the checkpoint's keys or shapes do not match the architecture.
    """
    spec = get_spec(name)
    path = checkpoint_path(name, checkpoint_dir)
    if not random_init and not path.is_file():
        raise CheckpointNotFoundError(
            f"No checkpoint for model {name!r} at {path}. {_fetch_hint(spec)}"
        )
    import torch

    from samapp.ml.sam2_models import sam2_state_dict

    if random_init:
        # The same weights in every process, whatever ran before: a random model stands in for a
        # missing checkpoint, and two workers (or two test orders) must agree on its masks.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)
            model = spec.build()
    else:
        model = spec.build()
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        if spec.family == "sam2":
            state_dict = sam2_state_dict(state_dict)
        model.load_state_dict(state_dict, strict=True)
    return model.to(device=resolve_device(device), dtype=dtype).eval()
