"""bench/worker_pool_sim.py: its closed-form queue model agrees with its own discrete-event
run, so the worker counts it prints for docs/deploy.md rest on a checked model."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "worker_pool_sim", ROOT / "bench/worker_pool_sim.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("servers", "utilisation"), [(1, 0.8), (4, 0.85), (16, 0.9)])
def test_erlang_c_tail_matches_the_simulated_queue(
    sim: ModuleType, servers: int, utilisation: float
) -> None:
    service = 5.0
    arrival = utilisation * servers / service
    closed_form = sim.wait_quantile(servers, arrival, service, 0.95)
    waits, _ = sim.simulate(servers, arrival, service, hours=20, burst=0, seed=1)
    simulated = waits[int(0.95 * (len(waits) - 1))]
    assert closed_form > 0
    assert simulated == pytest.approx(closed_form, rel=0.2)


def test_workers_needed_is_the_smallest_count_meeting_the_target(sim: ModuleType) -> None:
    arrival, service, target = 30.0, 0.2, 1.0
    needed = sim.workers_needed(arrival, service, target, 0.95)
    assert sim.wait_quantile(needed, arrival, service, 0.95) <= target
    assert sim.wait_quantile(needed - 1, arrival, service, 0.95) > target
    assert needed >= arrival * service  # never below the offered load


def test_a_burst_drains_in_about_its_work_over_the_workers(sim: ModuleType) -> None:
    _, drained = sim.simulate(4, 0.1, 1.0, hours=2, burst=400, seed=3)
    assert 400 / 4 * 0.8 < drained < 400 / 4 * 1.3
