"""What storing a job's proposals costs: segment everything (or proposals) hands over N masks
of one image, in process on Postgres with the Redis channel layer.

    python bench/proposal_writes.py [--proposals 124 500] [--repeats 5]

Baseline in the same run: one `annotation_create` per mask (its own transaction, seq and
`annotation.created` event carrying the mask), how the jobs stored proposals before. Ours:
`annotations_bulk_create` of `AnnotationDraft`s, one transaction and one
`annotations.bulk_created` event. The masks are discs and rings at random places on a
1024x768 image; both sides store the same masks, alternating which goes first. Per size it
prints the median wall time of the store, the events it logged and their bytes (what every
socket in the room receives), then the ratios. A page that shows the image fetches its
annotations once after ours' event (about the baseline's bytes, for that page only); pages
showing other images fetch nothing. Needs Postgres and Redis on 127.0.0.1 (a throwaway
database ``bench_write_path`` is created and dropped)."""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from write_path import drop_db, setup_django  # noqa: E402

HEIGHT, WIDTH = 768, 1024
RING_SHARE = 0.5


def masks(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` RLEs of discs and rings (radius 10 to 120 px) at random centres."""
    import numpy as np

    from samapp.ml.masks import mask_to_rle

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    out = []
    for _ in range(count):
        cy, cx, radius = rng.integers(0, HEIGHT), rng.integers(0, WIDTH), rng.integers(10, 120)
        distance = (yy - cy) ** 2 + (xx - cx) ** 2
        shape = distance <= radius**2
        if rng.random() < RING_SHARE:
            shape &= distance >= (radius // 2) ** 2
        out.append(mask_to_rle(shape.astype(np.uint8)))
    return out


def store(way: str, image: Any, user: Any, rles: list[dict[str, Any]]) -> tuple[float, int, int]:
    """Store `rles` on `image` one `way`; wall ms, events logged, their payload bytes."""
    from samapp.choices import AnnotationSource, ReviewState
    from samapp.models import Annotation, AnnotationEvent
    from samapp.services.annotations import (
        AnnotationDraft,
        annotation_create,
        annotations_bulk_create,
    )

    Annotation.objects.filter(image=image).delete()
    last_seq = AnnotationEvent.objects.filter(project_id=image.project_id).count()
    # What the job knows of each mask; both ways store the same drafts.
    drafts = [
        AnnotationDraft(
            image=image,
            rle=rle,
            predicted_iou=0.9,
            prompts={"points": [[1.0, 2.0]]},
            model_key="sam_tiny",
        )
        for rle in rles
    ]
    fields = {
        "author": user,
        "source": AnnotationSource.AUTOMATIC,
        "review_state": ReviewState.PROPOSED,
    }
    started = time.perf_counter()
    if way == "baseline":
        for draft in drafts:
            annotation_create(**vars(draft), **fields)
    else:
        annotations_bulk_create(drafts=drafts, **fields)
    elapsed = (time.perf_counter() - started) * 1000
    events = list(
        AnnotationEvent.objects.filter(project_id=image.project_id).order_by("seq")[last_seq:]
    )
    return elapsed, len(events), sum(len(json.dumps(e.payload)) for e in events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, nargs="+", default=[124, 500])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    setup_django()
    try:
        from django.contrib.auth import get_user_model

        from samapp.models import Image
        from samapp.services.projects import project_create

        user = get_user_model().objects.create_user(username="owner", password="x")
        project = project_create(name="proposals", created_by=user, labels=[])
        image = Image.objects.create(
            project=project,
            original_name="big.png",
            sha256="0" * 64,
            format="PNG",
            width=WIDTH,
            height=HEIGHT,
            uploaded_by=user,
        )
        print(f"Postgres + Redis channel layer, in process; a {WIDTH}x{HEIGHT} image")
        for count in args.proposals:
            rles = masks(count, seed=count)
            rows: dict[str, list[tuple[float, int, int]]] = {"baseline": [], "ours": []}
            for repeat in range(args.repeats):
                for way in ("baseline", "ours") if repeat % 2 == 0 else ("ours", "baseline"):
                    rows[way].append(store(way, image, user, rles))
            medians = {
                way: (statistics.median(r[0] for r in runs), runs[0][1], runs[0][2])
                for way, runs in rows.items()
            }
            for way, (ms, events, size) in medians.items():
                print(
                    f"{count:5d} proposals  {way:<8} {ms:8.1f} ms  {events:4d} events  "
                    f"{size:9d} bytes of events"
                )
            (base_ms, _, base_bytes), (ours_ms, _, ours_bytes) = medians.values()
            print(
                f"{count:5d} proposals  store {base_ms / ours_ms:.1f}x faster, "
                f"{base_bytes / ours_bytes:.0f}x fewer event bytes (baseline / ours, medians)"
            )
    finally:
        drop_db()


if __name__ == "__main__":
    main()
