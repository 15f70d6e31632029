"""How many embedding workers a deployment needs, and what saturates first, at internet scale.

A capacity model, not a measurement: images arrive at random (Poisson, ``--images-per-hour``)
plus an optional burst (one team dropping ``--burst`` images at once); each worker encodes one
image at a time in the encoder time of the chosen model and hardware. The queue is M/M/c:
Erlang C gives the share of images that wait and the wait's tail (P(W > t) = C * e^-(c mu -
lambda) t), and a discrete-event run of the same queue checks it and adds the burst.

Encoder times (seconds per image):
- CPU rows are this repository's own figures (bench/README.md rows 2 and 5: ViT-B 0.081 img/s
  with our batched SDPA encoder on 2 cores; sam_tiny 16-24 ms).
- GPU rows are published figures: SAM's paper (ViT-H image encoder ~0.15 s on an A100) and
  the PyTorch team's segment-anything-fast (up to 8x that throughput with bf16,
  torch.compile, SDPA and batching), and SAM 2's paper (Hiera-T ~47 frames/s on an A100).
  Measure your own with bench/embedding_throughput.py on the worker's hardware.

Beside the workers, the model counts what each image costs the shared parts (broker messages,
database writes, stored bytes) against rough per-node ceilings, and prints which one runs out
first. Its last line: ``workers W for p95 wait <= T s at R images/hour; first to saturate: X``.

    python bench/worker_pool_sim.py --images-per-hour 1000000 --encoder gpu-vit-h-fast
"""

import argparse
import heapq
import math
import random
from dataclasses import dataclass

ENCODER_SECONDS = {
    "cpu-vit-b": 1 / 0.081,  # bench/README.md row 2, 2 CPU cores
    "cpu-sam-tiny": 0.024,  # bench/README.md row 5 (16-24 ms)
    "gpu-vit-h": 0.15,  # SAM paper, A100, fp32, batch 1
    "gpu-vit-h-fast": 0.15 / 8,  # segment-anything-fast, A100, all optimisations
    "gpu-hiera-t": 1 / 47.2,  # SAM 2 paper, A100
}


@dataclass(frozen=True)
class SharedPart:
    """One shared service, what one image costs it and what one node of it sustains."""

    name: str
    per_image: float
    per_second_ceiling: float
    unit: str


def shared_parts(
    embedding_mib: float, image_mib: float, opens_per_image: float
) -> list[SharedPart]:
    # Per image: the upload's request + the embedding task (enqueue, deliver, ack) and the
    # websocket broadcast on the channel layer; the rows written (image, embedding claim,
    # ready, event log) and the annotation writes the team later makes (~10 per image);
    # stored bytes: the image, its embedding, and each browser open reading the embedding.
    return [
        SharedPart("broker (Redis)", 3, 50_000, "messages"),
        SharedPart("channel layer (Redis)", 1 + 10, 50_000, "messages"),
        SharedPart("database (Postgres)", 4 + 10 * 2, 5_000, "row writes"),
        SharedPart(
            "storage (S3-compatible)",
            (image_mib + embedding_mib * (1 + opens_per_image)),
            1_000,
            "MiB",
        ),
        SharedPart("storage requests (S3 PUT/GET)", 2 + opens_per_image, 3_500, "requests"),
    ]


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits (M/M/c), ``offered`` = lambda / mu < servers."""
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / servers / (1 - offered / servers)
    return last / (total + last)


def wait_quantile(servers: int, arrival: float, service: float, quantile: float) -> float:
    """The ``quantile`` of the waiting time before an encoder starts (M/M/c), in seconds."""
    mu = 1 / service
    offered = arrival / mu
    if offered >= servers:
        return math.inf
    waiting = erlang_c(servers, offered)
    if waiting <= 1 - quantile:
        return 0.0
    return math.log(waiting / (1 - quantile)) / (servers * mu - arrival)


def workers_needed(arrival: float, service: float, target: float, quantile: float) -> int:
    servers = max(1, math.ceil(arrival * service))
    while wait_quantile(servers, arrival, service, quantile) > target:
        servers += 1
    return servers


def simulate(
    servers: int, arrival: float, service: float, hours: float, burst: int, seed: int
) -> tuple[list[float], float]:
    """Discrete-event run: the waits of the Poisson arrivals, and when a burst (arriving
    at the first hour's end) has drained, in seconds after it arrived."""
    rng = random.Random(seed)
    free_at = [0.0] * servers
    heapq.heapify(free_at)
    waits: list[float] = []
    now, horizon, burst_at, burst_done = 0.0, hours * 3600, 3600.0, 0.0
    arrivals: list[tuple[float, bool]] = []
    while True:
        now += rng.expovariate(arrival)
        if now > horizon:
            break
        arrivals.append((now, False))
    arrivals += [(burst_at, True)] * burst
    arrivals.sort()
    for at, in_burst in arrivals:
        start = max(at, heapq.heappop(free_at))
        finish = start + rng.expovariate(1 / service)
        heapq.heappush(free_at, finish)
        if in_burst:
            burst_done = max(burst_done, finish - burst_at)
        else:
            waits.append(start - at)
    waits.sort()
    return waits, burst_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images-per-hour", type=float, default=1_000_000)
    parser.add_argument("--encoder", choices=sorted(ENCODER_SECONDS), default="gpu-vit-h-fast")
    parser.add_argument("--target-wait", type=float, default=2.0, help="p95 seconds")
    parser.add_argument("--burst", type=int, default=1000, help="images dropped at once")
    parser.add_argument("--embedding-mib", type=float, default=2.0, help="fp16 ViT embedding")
    parser.add_argument("--image-mib", type=float, default=2.0)
    parser.add_argument("--opens-per-image", type=float, default=3.0)
    parser.add_argument("--hours", type=float, default=2.0, help="simulated time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    arrival = args.images_per_hour / 3600
    service = ENCODER_SECONDS[args.encoder]
    servers = workers_needed(arrival, service, args.target_wait, 0.95)
    print(f"{args.images_per_hour:,.0f} images/hour = {arrival:.2f}/s; encoder {args.encoder}")
    print(f"  {service * 1000:.1f} ms/image, {1 / service:.1f} images/s per worker\n")
    print("workers | utilisation | p50 wait | p95 wait (Erlang C) | p95 wait (simulated)")
    for count in sorted({max(1, servers - 1), servers, servers + 1, servers * 2}):
        if arrival * service >= count:
            print(f"{count:7d} | {arrival * service / count:10.0%} | overloaded: the queue grows")
            continue
        waits, _ = simulate(count, arrival, service, args.hours, 0, args.seed)
        simulated = waits[int(0.95 * (len(waits) - 1))] if waits else 0.0
        print(
            f"{count:7d} | {arrival * service / count:10.0%} "
            f"| {wait_quantile(count, arrival, service, 0.5):7.2f} s "
            f"| {wait_quantile(count, arrival, service, 0.95):18.2f} s "
            f"| {simulated:19.2f} s"
        )
    _, drained = simulate(servers, arrival, service, args.hours, args.burst, args.seed)
    print(
        f"\nA burst of {args.burst} images on {servers} workers (FIFO) drains in {drained:.0f} s;"
        " per-project fair scheduling keeps other projects' single images near the p95 above."
    )

    print("\nshared part | per image | at this rate | one node's ceiling | load")
    parts = shared_parts(args.embedding_mib, args.image_mib, args.opens_per_image)
    loads = []
    for part in parts:
        rate = part.per_image * arrival
        load = rate / part.per_second_ceiling
        loads.append((load, part.name))
        print(
            f"{part.name} | {part.per_image:g} {part.unit} | {rate:,.1f} {part.unit}/s "
            f"| {part.per_second_ceiling:,} {part.unit}/s | {load:.1%}"
        )
    first = max(loads)
    print(
        f"workers {servers} for p95 wait <= {args.target_wait:g} s at "
        f"{args.images_per_hour:,.0f} images/hour; first to saturate: {first[1]} "
        f"({first[0]:.0%} of one node)"
    )


if __name__ == "__main__":
    main()
