"""A third-party reader, run in its own process, that reads an exported dataset and writes
what it read as JSON for tests/datasets/test_conformance.py to compare.

    python tests/datasets/oracle.py yolo ROOT/data.yaml OUT.json
    python tests/datasets/oracle.py datumaro ROOT FORMAT OUT.json

Readers run here rather than in the test process because importing them changes it
(ultralytics replaces ``PIL.Image.open`` process-wide), and because datumaro's pins
(opencv-python-headless < 5, pillow 12) clash with requirements.txt: it lives in the
oracle environment .venv-oracles (tests/datasets/oracles-requirements.txt).
This file imports only numpy and the reader, never the application.
"""

import base64
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """A boolean mask as JSON: its shape and its bits, packed and base64-encoded."""
    bits = np.packbits(np.asarray(mask, dtype=bool).ravel())
    return {"shape": list(mask.shape), "bits": base64.b64encode(bits.tobytes()).decode()}


def read_yolo(data_yaml: str) -> dict[str, Any]:
    """ultralytics' own checks and segment loader; each segment painted by ``polygon2mask``."""
    from ultralytics.data import YOLODataset
    from ultralytics.data.utils import check_det_dataset, polygon2mask

    data = check_det_dataset(data_yaml)
    dataset = YOLODataset(img_path=data["train"], data=data, task="segment", augment=False)
    labels = []
    for label in dataset.labels:
        height, width = label["shape"]
        painted = []
        for segment in label["segments"]:
            points = segment * np.array([width, height])
            painted.append(encode_mask(polygon2mask((height, width), [points.reshape(-1)])))
        labels.append(
            {
                "file": Path(label["im_file"]).name,
                "shape": [int(height), int(width)],
                "classes": [data["names"][int(c)] for c in label["cls"].ravel()],
                "masks": painted,
            }
        )
    return {"names": sorted(data["names"].items()), "nc": data["nc"], "labels": labels}


def read_datumaro(root: str, format: str) -> dict[str, Any]:
    """``Dataset.import_from`` as it is: every item, with its polygons and masks."""
    import datumaro

    dataset = datumaro.Dataset.import_from(root, format)
    labels = dataset.categories()[datumaro.AnnotationType.label]
    items = []
    for item in dataset:
        annotations: list[dict[str, Any]] = []
        for ann in item.annotations:
            if ann.type == datumaro.AnnotationType.polygon:
                shape = {"type": "polygon", "points": [float(v) for v in ann.points]}
            elif ann.type == datumaro.AnnotationType.mask:
                shape = {"type": "mask", "mask": encode_mask(ann.image)}
            else:
                continue
            annotations.append({**shape, "label": labels[ann.label].name, "group": ann.group})
        items.append({"id": item.id, "subset": item.subset, "annotations": annotations})
    return {"version": metadata.version("datumaro"), "items": items}


READERS = {"yolo": read_yolo, "datumaro": read_datumaro}


def main(argv: list[str]) -> None:
    reader, *args, out = argv
    Path(out).write_text(json.dumps(READERS[reader](*args)))


if __name__ == "__main__":
    main(sys.argv[1:])
