"""Export time and peak memory for a generated 10,000-image project (64x64, 1-3 masks each).

    python bench/export_10k.py [--images 10000] [--formats coco,coco-polygons,yolo,...]

Builds a throw-away SQLite project under a temporary SAM_DATA_DIR (bulk_create, files written
straight into storage), then runs each export in a fresh subprocess and reports its wall time
and peak RSS (ru_maxrss). Baselines measured in the same run: a subprocess that only starts
Django (its RSS is subtracted), and the same export limited to the first tenth of the images,
so "peak 10k / peak 1k" near 1.0 means memory stays flat as the project grows.
"""

import argparse
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _django(data_dir: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.test")
    os.environ["SAM_DATA_DIR"] = data_dir
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def generate(count: int) -> None:
    import numpy as np
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from PIL import Image as PILImage

    from samapp.ml.masks import mask_to_rle, rle_area, rle_bbox
    from samapp.models import Annotation, Image, Label, Project

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(username="bench")
    project = Project.objects.create(name="bench", created_by=user)
    labels = [
        Label.objects.create(project=project, name=name, color=color)
        for name, color in (("cat", "#ff0000"), ("dog", "#00ff00"), ("bird", "#0000ff"))
    ]
    rng = np.random.default_rng(0)
    folder = Path(settings.MEDIA_ROOT) / f"projects/{project.id}/images"
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:64, :64]
    images, shapes = [], []
    for index in range(count):
        pixels = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        PILImage.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        content = buffer.getvalue()
        sha = hashlib.sha256(content).hexdigest()
        (folder / f"{sha}.png").write_bytes(content)
        images.append(
            Image(
                project=project,
                file=f"projects/{project.id}/images/{sha}.png",
                original_name=f"img_{index:05d}.png",
                sha256=sha,
                format="PNG",
                width=64,
                height=64,
            )
        )
        masks = []
        for _ in range(int(rng.integers(1, 4))):
            cx, cy = (int(v) for v in rng.integers(8, 56, 2))
            r = int(rng.integers(4, 14))
            masks.append(((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.uint8))
        shapes.append(masks)
    Image.objects.bulk_create(images, batch_size=1000)
    rows = []
    stored = Image.objects.filter(project=project).order_by("id")
    for image, masks in zip(stored, shapes, strict=True):
        for mask in masks:
            rle = mask_to_rle(mask)
            rows.append(
                Annotation(
                    image=image,
                    label=labels[int(rng.integers(0, 3))],
                    rle=rle,
                    bbox=rle_bbox(rle),
                    area=rle_area(rle),
                )
            )
    Annotation.objects.bulk_create(rows, batch_size=2000)
    print(json.dumps({"project": project.id, "images": count, "annotations": len(rows)}))


def run_one(fmt: str, limit: int) -> None:
    from samapp.models import ExportJob, Image, Project
    from samapp.services.datasets.exports import export_job_create

    project = Project.objects.get(name="bench")
    options: dict[str, object] = {}
    if fmt.endswith("-polygons"):  # coco-polygons, cvat-polygons, labelstudio-polygons
        fmt, options = fmt.removesuffix("-polygons"), {"mask_format": "polygons", "tolerance": 1.0}
    if limit:
        all_ids = Image.objects.filter(project=project).order_by("id").values_list("id", flat=True)
        ids = list(all_ids[:limit])
        options["filters"] = {"images": ids}
    start = time.perf_counter()
    job = export_job_create(project=project, created_by=None, format=fmt, options=options)  # eager
    seconds = time.perf_counter() - start
    job = ExportJob.objects.get(pk=job.pk)
    print(
        json.dumps(
            {
                "state": job.state,
                "error": job.error,
                "seconds": seconds,
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "zip_mb": job.result_file.size / 1e6 if job.result_file else 0,
            }
        )
    )


def _child(data_dir: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--data-dir", data_dir, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument(
        "--formats",
        default="coco,coco-polygons,yolo,png,voc,cvat,cvat-polygons,labelstudio,labelstudio-polygons",
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--run")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    if args.data_dir:  # a child process
        _django(args.data_dir)
        if args.generate:
            generate(args.images)
        elif args.baseline:
            import samapp.services.datasets.exports  # noqa: F401  (same imports as a run)

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({"maxrss_mb": peak}))
        else:
            run_one(args.run, args.limit)
        return
    data_dir = tempfile.mkdtemp(prefix="samstudio-bench-")
    start = time.perf_counter()
    made = _child(data_dir, "--generate", "--images", str(args.images))
    print(
        f"generated {made['images']} images, {made['annotations']} annotations "
        f"in {time.perf_counter() - start:.1f} s ({data_dir})"
    )
    base = _child(data_dir, "--baseline")["maxrss_mb"]
    print(f"baseline process (Django + imports): peak RSS {base:.1f} MB")
    tenth = max(1, args.images // 10)
    print(
        f"{'format':<22}{'images':>7}{'seconds':>9}{'img/s':>8}{'peak MB':>9}"
        f"{'over base':>10}{'zip MB':>8}"
    )
    for fmt in args.formats.split(","):
        rows = {}
        for limit in (tenth, 0):
            result = _child(data_dir, "--run", fmt, "--limit", str(limit))
            assert result["state"] == "done", result
            n = limit or args.images
            rows[n] = result
            print(
                f"{fmt:<22}{n:>7}{result['seconds']:>9.1f}{n / result['seconds']:>8.0f}"
                f"{result['maxrss_mb']:>9.1f}{result['maxrss_mb'] - base:>10.1f}"
                f"{result['zip_mb']:>8.1f}"
            )
        small, big = rows[tenth], rows[args.images]
        time_ratio = big["seconds"] / small["seconds"]
        rss_ratio = (big["maxrss_mb"] - base) / max(small["maxrss_mb"] - base, 0.1)
        print(
            f"{fmt:<22} ratio {args.images}/{tenth}: time x{time_ratio:.2f}, "
            f"peak RSS over baseline x{rss_ratio:.2f}"
        )


if __name__ == "__main__":
    main()
