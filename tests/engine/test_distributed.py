"""The torch.distributed layer: a no-op single process, real collectives over two processes.

The two-process tests use gloo on the CPU, as a CPU machine does under ``--nproc 2``;
``launch`` is tested through a subprocess with a timeout, so a hang fails instead of
blocking the suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from harness.engine import distributed
from harness.engine.distributed import World
from harness.errors import HarnessError
from tests.helpers import REPO


@pytest.fixture
def not_launched(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in distributed.LAUNCH_ENV:
        monkeypatch.delenv(key, raising=False)


# --- one process: everything works without a process group ---------------------------


def test_world() -> None:
    assert World() == World(0, 1, 0)
    assert World().is_main and not World().active
    assert World(1, 2, 1).active and not World(1, 2, 1).is_main


def test_single_process_is_a_no_op(not_launched: None) -> None:
    assert not distributed.launched()
    assert distributed.init("cpu") == World()
    assert distributed.init("cuda") == World()  # not launched: not even the GPU is touched
    assert not dist.is_initialized()
    world = distributed.current()
    assert world == World()
    distributed.barrier(world)
    assert distributed.agree_any(True, world) is True
    assert distributed.agree_any(False, world) is False
    obj = {"a": [1, 2]}
    assert distributed.broadcast_object(obj, world) is obj
    assert distributed.gather_objects(obj, world) == [obj]
    assert distributed.shard(5, world) == [0, 1, 2, 3, 4]
    distributed.shutdown()
    assert not dist.is_initialized()


def test_gather_rows_single_process_reorders_and_checks() -> None:
    rows = np.array([[2.0, 20.0], [0.0, 0.0], [1.0, 10.0]])
    out = distributed.gather_rows(rows, [2, 0, 1], 3, World())
    assert out.dtype == np.float64
    assert np.array_equal(out, [[0.0, 0.0], [1.0, 10.0], [2.0, 20.0]])
    with pytest.raises(ValueError, match=r"missing \[2\], given twice \[0\]"):
        distributed.gather_rows(rows, [0, 0, 1], 3, World())
    with pytest.raises(ValueError, match="outside"):
        distributed.gather_rows(rows, [0, 1, 3], 3, World())
    with pytest.raises(ValueError, match="rows must be"):
        distributed.gather_rows(rows, [0, 1], 3, World())
    assert distributed.gather_rows(np.empty((0, 4)), [], 0, World()).shape == (0, 4)
    with pytest.raises(ValueError, match=r"missing \[0, 1\]"):
        distributed.gather_rows(np.empty(0), [], 2, World())


def test_shard_is_disjoint_and_covers() -> None:
    for size in (1, 2, 3, 7):
        for n in (0, 1, 2, 5, 6, 10):
            shards = [distributed.shard(n, World(r, size)) for r in range(size)]
            assert sorted(i for s in shards for i in s) == list(range(n))
    assert distributed.shard(2, World(2, 3)) == []  # a rank may get nothing


def test_launched_reads_the_launchers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert not distributed.launched()
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert distributed.launched()
    # A launched world of one needs no process group.
    assert distributed.init("cpu") == World(0, 1, 0)
    assert not dist.is_initialized()
    with pytest.raises(HarnessError, match="already running under torch.distributed.run"):
        distributed.launch(2, ["list"])


def test_importing_and_the_single_process_path_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from harness.engine import distributed as d\n"
        "w = d.init('cpu')\n"
        "assert w == d.current() == d.World()\n"
        "d.barrier(w); d.agree_any(True, w); d.broadcast_object(1, w); d.gather_objects(1, w)\n"
        "d.gather_rows([[1.0]], [0], 1, w); d.shard(3, w); d.shutdown()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in distributed.LAUNCH_ENV}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO, timeout=60)


# --- the sampler ----------------------------------------------------------------------


def _loader_pair(n: int, batch_size: int, world: World, seed: int = 7):
    plain_gen = torch.Generator().manual_seed(seed)
    sharded_gen = torch.Generator().manual_seed(seed)
    data = list(range(n))
    plain = DataLoader(data, batch_size=batch_size, shuffle=True, generator=plain_gen)
    sampler = distributed.ShardedBatchSampler(n, batch_size, world, sharded_gen)
    # Both loaders also draw a base seed from their generator each epoch, as in training.
    sharded = DataLoader(data, batch_sampler=sampler, generator=sharded_gen)
    return plain, plain_gen, sharded, sharded_gen


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (12, 4), (5, 8), (1, 1), (7, 7)])
def test_one_process_matches_dataloader_shuffle(n: int, batch_size: int) -> None:
    plain, plain_gen, sharded, sharded_gen = _loader_pair(n, batch_size, World())
    assert len(sharded) == len(plain)
    for _epoch in range(3):
        steps = 0
        for a, b in zip(plain, sharded, strict=True):
            assert a.tolist() == b.tolist()
            # The generator is consumed at the same moments, not only by the epoch's end.
            assert torch.equal(plain_gen.get_state(), sharded_gen.get_state())
            steps += 1
        assert steps == len(plain)
        assert torch.equal(plain_gen.get_state(), sharded_gen.get_state())


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize(("n", "batch_size"), [(10, 4), (11, 6), (7, 3), (2, 5), (9, 9)])
def test_ranks_split_each_global_batch(size: int, n: int, batch_size: int) -> None:
    seed = 11
    reference = distributed.ShardedBatchSampler(
        n, batch_size, World(), torch.Generator().manual_seed(seed)
    )
    gens = [torch.Generator().manual_seed(seed) for _ in range(size)]
    samplers = [
        distributed.ShardedBatchSampler(n, batch_size, World(r, size), gens[r]) for r in range(size)
    ]
    ref_gen = reference.generator
    for _epoch in range(3):
        global_batches = list(reference)
        per_rank = [list(s) for s in samplers]
        assert all(len(batches) == len(reference) == len(global_batches) for batches in per_rank)
        perm = [i for batch in global_batches for i in batch]
        assert sorted(perm) == list(range(n))
        for b, global_batch in enumerate(global_batches):
            parts = [per_rank[r][b] for r in range(size)]
            assert all(parts), "every rank takes every step"
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
            joined = [i for part in parts for i in part]
            if len(global_batch) >= size:
                assert joined == global_batch  # contiguous parts, in rank order, no padding
            else:
                padding = [perm[i % n] for i in range(size - len(global_batch))]
                assert joined == global_batch + padding
        seen = {i for batches in per_rank for batch in batches for i in batch}
        assert seen == set(range(n))
        for gen in gens:  # every rank consumed its generator exactly like one process
            assert torch.equal(gen.get_state(), ref_gen.get_state())


def test_sampler_rejects_empty() -> None:
    with pytest.raises(ValueError):
        distributed.ShardedBatchSampler(0, 2, World(), torch.Generator())
    with pytest.raises(ValueError):
        distributed.ShardedBatchSampler(3, 0, World(), torch.Generator())


# --- two real processes over gloo -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, size: int, port: int, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    world = distributed.init("cpu")
    again = distributed.init("cpu")
    result: dict = {"world": list(vars(world).values()), "same": again == world}
    result["current"] = distributed.current() == world
    n, classes = 5, 3
    positions = distributed.shard(n, world)
    rows = np.array([[p * 10.0 + c + 0.1 for c in range(classes)] for p in positions])
    result["rows"] = distributed.gather_rows(rows, positions, n, world).tolist()
    mine = distributed.shard(1, world)  # rank 1 gets nothing and knows no C
    rows = np.array([[7.0, 8.0]]) if mine else np.empty(0)
    result["one_row"] = distributed.gather_rows(rows, mine, 1, world).tolist()
    try:
        distributed.gather_rows(np.zeros((1, classes)), [0], n, world)  # both claim 0
        result["duplicate"] = "no error"
    except ValueError as exc:
        result["duplicate"] = str(exc)
    result["any_one"] = distributed.agree_any(rank == 1, world)
    result["any_none"] = distributed.agree_any(False, world)
    result["broadcast"] = distributed.broadcast_object({"from": rank}, world)
    result["broadcast_1"] = distributed.broadcast_object(f"rank {rank}", world, src=1)
    result["gathered"] = distributed.gather_objects(("r", rank), world)
    distributed.barrier(world)
    distributed.shutdown()
    result["after_shutdown"] = distributed.current() == World()
    Path(out_dir, f"rank-{rank}.json").write_text(json.dumps(result))


def test_two_processes_over_gloo(tmp_path: Path) -> None:
    size = 2
    context = mp.spawn(_worker, args=(size, _free_port(), str(tmp_path)), nprocs=size, join=False)
    deadline = time.monotonic() + 60
    # join raises (with the worker's traceback) if one failed; a hang fails, not blocks.
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("two gloo processes did not finish within 60 s")
    expected_rows = [[p * 10.0 + c + 0.1 for c in range(3)] for p in range(5)]
    for rank in range(size):
        result = json.loads((tmp_path / f"rank-{rank}.json").read_text())
        assert result["world"] == [rank, size, rank]
        assert result["same"] and result["current"] and result["after_shutdown"]
        assert result["rows"] == expected_rows  # exact: the rows travel as float64
        assert result["one_row"] == [[7.0, 8.0]]
        assert "given twice [0]" in result["duplicate"]
        assert result["any_one"] is True and result["any_none"] is False
        assert result["broadcast"] == {"from": 0}
        assert result["broadcast_1"] == "rank 1"
        assert result["gathered"] == [["r", 0], ["r", 1]]


# --- launch ---------------------------------------------------------------------------


def _launch(*argv: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\nfrom harness.engine.distributed import launch\n"
        "sys.exit(launch(2, sys.argv[1:]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in distributed.LAUNCH_ENV}
    env.pop("OMP_NUM_THREADS", None)
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_launch_runs_the_command_in_two_processes() -> None:
    done = _launch("list", "protocols")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("tiny") == 2  # each rank ran the command
    assert done.stderr == ""  # no launcher chatter, no OMP_NUM_THREADS warning


def test_launch_returns_the_childrens_exit_code_without_tracebacks() -> None:
    done = _launch("list", "nonsense")
    assert done.returncode == 2
    assert "harness: error: harness list 'nonsense'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "exitcode" not in done.stderr and "SIGTERM" not in done.stderr


def test_exit_code_of_failed_ranks() -> None:
    term, kill = -signal.SIGTERM.value, -signal.SIGKILL.value
    # The failed rank's own code wins over the ranks the launcher then stopped.
    assert distributed._exit_code({0: term, 1: 2}) == (2, None)
    assert distributed._exit_code({0: 1, 1: 2}) == (1, None)
    assert distributed._exit_code({2: 130, 1: term}) == (130, None)
    code, message = distributed._exit_code({0: term, 1: kill})
    assert code == 1 and message == "harness: run failed: rank 1 was killed by SIGKILL"
    code, message = distributed._exit_code({1: term})
    assert code == 1 and message == "harness: run failed: rank 1 was killed by SIGTERM"


def test_launch_rejects_no_processes(not_launched: None) -> None:
    with pytest.raises(HarnessError, match="at least 1"):
        distributed.launch(0, ["list"])
