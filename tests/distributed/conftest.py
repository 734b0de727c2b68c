"""A Ray cluster of two nodes on 127.0.0.1 (one CPU each), started once for the session with
Ray's own multi-node test cluster (``ray.cluster_utils.Cluster``) and shut down at its end.

Every server of the cluster listens on the loopback address only. ``ray start`` cannot do that on
Linux: it turns ``--node-ip-address=127.0.0.1`` into the machine's network address and binds
servers to every interface. Ray keeps a cluster on the loopback address where it does not expect
several machines (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read through
``ray_constants.ENABLE_RAY_CLUSTER``); the fixture sets it for the cluster's lifetime.
"""

import os
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="session")
def ray_cluster():
    """The address ``127.0.0.1:PORT`` of a two-node cluster this process is connected to."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    from hashlearn.distributed import connect

    settings = {
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        # the workers import hashlearn from this tree, installed or not
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    saved = {name: os.environ.get(name) for name in settings}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(settings)
    ray_constants.ENABLE_RAY_CLUSTER = False  # node address: the loopback one
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
        )
        cluster.add_node(num_cpus=1)
        address = cluster.address
        assert address.startswith("127.0.0.1:"), address
        connect(address)
        alive = [node for node in ray.nodes() if node["Alive"]]
        assert len(alive) == 2 and ray.cluster_resources()["CPU"] == 2
        assert {node["NodeManagerAddress"] for node in alive} == {"127.0.0.1"}
        yield address
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
