"""A Ray cluster of two nodes on 127.0.0.1 (one CPU each), started once for the session by
``ray start`` and stopped by ``ray stop --force`` at its end."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray(*args: str, env: dict[str, str]) -> None:
    command = [str(Path(sys.executable).parent / "ray"), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def ray_cluster():
    """The address ``127.0.0.1:PORT`` of a two-node cluster this process is connected to."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from hashlearn.distributed import connect

    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    # the workers import hashlearn from this tree, installed or not
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    address = f"127.0.0.1:{_free_port()}"
    common = ("--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats")
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        _ray("start", "--head", f"--port={address.split(':')[1]}", "--include-dashboard=false",
             *common, env=env)  # fmt: skip
        _ray("start", f"--address={address}", *common, env=env)
        connect(address)
        alive = [node for node in ray.nodes() if node["Alive"]]
        assert len(alive) == 2 and ray.cluster_resources()["CPU"] == 2
        yield address
    finally:
        ray.shutdown()
        _ray("stop", "--force", env=env)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved
