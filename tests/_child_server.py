"""The service over :func:`_serve_support.lsh_files` in a child process, served by the library's
own ``run_server`` with any of its options, so tests can reach its connections and read its
memory (``/proc/PID/status``). The child ends by itself when the test process goes away or after
``lifetime`` seconds, whatever happens to the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _serve_support import free_port, stop_process, wait_for_health

_SCRIPT = """
import json, os, sys, threading, time

spec = json.loads(sys.argv[1])

def watchdog():
    deadline = time.monotonic() + spec["lifetime"]
    while time.monotonic() < deadline and os.getppid() == spec["parent"]:
        time.sleep(0.2)
    os._exit(0)

threading.Thread(target=watchdog, daemon=True).start()
from hashlearn.serve import ServeLimits, open_service, run_server

service = open_service(**spec["service"], limits=ServeLimits(**spec["limits"]))
run_server(service, port=spec["port"], log_level="warning", access_log=False, **spec["server"])
"""


class ChildServer:
    """``run_server(open_service(lsh files), **server)`` on 127.0.0.1 and a free port.

    Parameters
    ----------
    files : dict
        Of :func:`_serve_support.lsh_files` (8 x 8 grey images).
    data_dir, log : Path
    limits : dict
        :class:`~hashlearn.serve.ServeLimits` fields.
    resize : bool or None
        Resize uploads to 8 x 8.
    **server
        Options of ``run_server`` (``header_timeout``, ``max_connections``, ...).
    """

    def __init__(
        self,
        files: dict,
        data_dir: Path,
        log: Path,
        *,
        limits: dict[str, Any] | None = None,
        resize: bool | None = None,
        lifetime: float = 120.0,
        **server: Any,
    ) -> None:
        folder = files["folder"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.spec = {
            "service": {
                "model": str(folder / "lsh.safetensors"),
                "index": str(folder / "db.hlindex"),
                "data_dir": str(data_dir),
                "images_dir": str(folder / "images"),
                "labels": str(folder / "y.npy"),
                "image_shape": [8, 8],
                "resize": resize,
            },
            "limits": limits or {},
            "server": server,
            "port": self.port,
            "parent": os.getpid(),
            "lifetime": lifetime,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> ChildServer:
        self._log = open(self.log, "wb")
        env = {k: v for k, v in os.environ.items() if k != "HASHLEARN_SERVE_TOKEN"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, json.dumps(self.spec)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        if not wait_for_health(self.process, self.url, self.log, timeout):
            self.stop()
            raise RuntimeError(f"no answer from /health in {timeout} s:\n{self.log.read_text()}")
        return self

    def memory_kib(self, field: str = "VmHWM") -> int:
        """A memory figure of the server process from ``/proc/PID/status`` (kB)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self._log.close()

    def __enter__(self) -> ChildServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
