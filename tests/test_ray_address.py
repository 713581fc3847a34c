"""--ray-address that names no reachable cluster: one line, exit 2, within seconds (Ray itself retries
for many minutes). No cluster is needed: unused local ports, and Ray's own calls replaced."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import ray_executor
from pipeline.cli import cli
from pipeline.ray_executor import RayAddressError, RayExecutor, check_address

REPO = Path(__file__).resolve().parents[1]
ray = pytest.importorskip("ray")


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _input(tmp_path: Path) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "One short document."}\n')
    return src


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_a_cron_run_on_an_address_where_nothing_listens_fails_at_once_with_one_line(tmp_path: Path, form: str) -> None:
    address = form.format(port=_unused_port())
    args = ["run", str(_input(tmp_path)), "-o", str(tmp_path / "out"), "--executor", "ray", "--ray-address", address]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(REPO)}
    started = time.monotonic()
    # (Before: ray.init retried for about 14 minutes, deaf to SIGTERM; the timeout kills it.)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args, "-q"], capture_output=True, text=True, timeout=60, env=env
    )
    assert time.monotonic() - started < 15
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"cleancorpus: error: cannot reach the Ray cluster at --ray-address {address}: connection refused; "
        "is the cluster up (`ray start --head` on its head node) and the address right?"
    ]
    assert proc.stdout == "" and not (tmp_path / "out" / "in.jsonl").exists()


@pytest.mark.parametrize("address", ["head", "head:port", "head:0", ":6379", "ray://", "[::1]"])
def test_a_malformed_address_is_a_usage_error_before_the_run(tmp_path: Path, address: str) -> None:
    out = tmp_path / "out"
    args = ["run", str(_input(tmp_path)), "-o", str(out), "--executor", "ray", "--ray-address", address]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output.startswith(f"cleancorpus: error: --ray-address {address!r} is not a Ray address: use HOST:")
    assert not out.exists()


def test_an_address_that_does_not_answer_is_given_up_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[str, int], float]] = []

    def black_hole(where: tuple[str, int], timeout: float) -> None:
        calls.append((where, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    with pytest.raises(RayAddressError, match=r"10\.255\.255\.1:6379: no answer within 10 s;"):
        check_address("10.255.255.1:6379")
    with pytest.raises(RayAddressError, match=r"ray://head \(head:10001\): no answer"):
        check_address("ray://head")  # Ray Client's default port
    with pytest.raises(RayAddressError, match=r"\[::1\]:6379: no answer"):
        check_address("[::1]:6379")
    assert calls == [(("10.255.255.1", 6379), 10.0), (("head", 10001), 10.0), (("::1", 6379), 10.0)]


def test_auto_and_local_are_left_to_ray_or_checked_where_ray_finds_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ray._private import services

    check_address("local")  # Ray starts one: nothing to reach
    port = _unused_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # what ray.init takes for auto
    with pytest.raises(RayAddressError, match=f"--ray-address auto \\(127.0.0.1:{port}\\): connection refused"):
        check_address("auto")
    monkeypatch.delenv("RAY_ADDRESS")

    def none_running(address: str) -> str:
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(services, "canonicalize_bootstrap_address", none_running)
    with pytest.raises(RayAddressError, match="auto: no running Ray cluster found on this machine"):
        check_address("auto")
    with socket.socket() as listening:  # a cluster `ray start` recorded, up
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        found = f"127.0.0.1:{listening.getsockname()[1]}"
        monkeypatch.setattr(services, "canonicalize_bootstrap_address", lambda address: found)
        check_address("auto")
        check_address(found)


def test_ray_tries_to_join_once_and_a_failure_is_an_address_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port that takes connections but is not Ray's: Ray tried 20 times, up to ~40 s each.
    seen: list[str | None] = []

    def refused(**kwargs: object) -> None:
        seen.append(os.environ.get(ray_executor.GCS_TRIES))
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")

    monkeypatch.setattr(ray_executor, "check_address", lambda address: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refused)
    monkeypatch.delenv(ray_executor.GCS_TRIES, raising=False)
    with pytest.raises(RayAddressError, match=r"cannot join the Ray cluster at --ray-address 10\.0\.0\.1:6379: Failed"):
        RayExecutor(print, address="10.0.0.1:6379")
    assert seen == ["1"] and ray_executor.GCS_TRIES not in os.environ  # set for ray.init only
    monkeypatch.setenv(ray_executor.GCS_TRIES, "30")  # the operator's choice is kept
    with pytest.raises(RayAddressError):
        RayExecutor(print, address="10.0.0.1:6379")
    assert seen == ["1", "30"] and os.environ[ray_executor.GCS_TRIES] == "30"


def test_workers_size_a_local_ray_an_explicit_1_too_and_all_cpus_when_not_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipeline import runner
    from pipeline.executors import SerialExecutor, make_executor

    sized: list[object] = []

    def init(**kwargs: object) -> None:  # no Ray is started
        sized.append(kwargs.get("num_cpus"))
        raise RuntimeError("stop here")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    for workers in (1, 3, None):
        with pytest.raises(RuntimeError, match="stop here"):
            make_executor(workers, print, (), "ray")
    assert sized == [1, 3, None]  # (before: None for 1, every CPU)
    assert isinstance(make_executor(None, print, (), "local"), SerialExecutor)  # local: 1 process by default
    assert isinstance(make_executor(1, print, (), "local"), SerialExecutor)
    # The command line tells an explicit --workers 1 from none.
    given: list[object] = []
    monkeypatch.setattr(runner, "run", lambda *args, **kwargs: given.append(kwargs["workers"]) or sys.exit(0))
    for extra in ([], ["--workers", "1"], ["--workers", "2"]):
        result = CliRunner().invoke(cli, ["run", str(_input(tmp_path)), "-o", str(tmp_path / "o"), "-q", *extra])
        assert result.exit_code == 0, result.output
    assert given == [None, 1, 2]
