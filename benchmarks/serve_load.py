"""Load test of ``hashlearn serve`` on loopback: searches and adds, a kill -9, no lost write.

The script builds 100,000 items (the 5,000 mnist5k digits and shifted, noisy copies of them),
encoded by a 64-bit LSH model on raw pixels, and serves them with ``hashlearn serve`` on
127.0.0.1. Two client processes then send requests for ``--duration`` seconds over keep-alive
connections: searches by PNG image and by code, adds of codes and of PNG images (with a
bearer token). Halfway through, the server is killed with SIGKILL and restarted on the same
data folder; requests refused while it is down are counted apart (adds in flight then are not
acknowledged). Afterwards every acknowledged add must be found by a radius-0 search of its
code, on the restarted server and once more after a second kill -9 and restart.

It reports requests per second, p50 / p99 latency per request kind, errors (any answer other
than the expected 200 / 201, or a refused request outside the restart), the downtime, and the
count of acknowledged adds found. It exits with status 1 if there was an error or a lost add.

Run from the repository root::

    .venv/bin/python benchmarks/serve_load.py --duration 60
    .venv/bin/python benchmarks/serve_load.py --duration 10 --items 20000   # quicker
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOKEN = "load-test-token"
KINDS = ("search_image", "search_code", "add_code", "add_image")


# -- the data --------------------------------------------------------------------------------------


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def jittered(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Copies of images shifted by up to 2 pixels, with Gaussian noise (sigma 0.05)."""
    out = np.empty_like(X)
    shifts = rng.integers(-2, 3, size=(len(X), 2))
    for i, (dy, dx) in enumerate(shifts):
        out[i] = np.roll(X[i], (int(dy), int(dx)), axis=(0, 1))
    out += rng.normal(0, 0.05, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 1)


def build(folder: Path, n_items: int, n_bits: int, seed: int) -> dict[str, Path]:
    """Model, index and labels of ``n_items`` items in ``folder``."""
    from hashlearn import LinearIndex, create_hasher, load_dataset

    data = load_dataset("mnist5k")
    rng = np.random.default_rng(seed)
    hasher = create_hasher("lsh", n_bits=n_bits, random_state=seed).fit(data.X)
    codes, labels = [], []
    done = 0
    while done < n_items:
        take = min(len(data.X), n_items - done)
        X = data.X[:take] if done == 0 else jittered(data.X[:take], rng)
        codes.append(hasher.encode(X))
        labels.append(data.y[:take])
        done += take
    paths = {
        "model": folder / "lsh.safetensors",
        "index": folder / "items.hlindex",
        "labels": folder / "labels.npy",
        "data": folder / "data",
    }
    hasher.save(paths["model"])
    index = LinearIndex(n_bits)
    index.add(np.concatenate(codes))
    index.save(paths["index"])
    np.save(paths["labels"], np.concatenate(labels))
    return paths


# -- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(paths: dict[str, Path], port: int, log: Path) -> subprocess.Popen:
    import httpx

    command = [
        sys.executable, "-m", "hashlearn.cli", "serve",
        "--model", str(paths["model"]), "--index", str(paths["index"]),
        "--labels", str(paths["labels"]), "--image-shape", "28x28",
        "--store", str(paths["data"]), "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = {**os.environ, "HASHLEARN_SERVE_TOKEN": TOKEN}
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not start within 120 s")


def kill_9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)


# -- a client --------------------------------------------------------------------------------------


def client(number: int, url: str, deadline: float, mix: dict[str, float], seed: int,
           max_requests: int, out: multiprocessing.Queue) -> None:  # fmt: skip
    """Send requests until ``deadline`` (time.time()) and put a report on ``out``."""
    import httpx

    from hashlearn import load_dataset

    rng = np.random.default_rng(seed + number)
    data = load_dataset("mnist5k")
    pngs = [png_bytes(image) for image in data.X[rng.choice(len(data.X), 200, replace=False)]]
    kinds = list(mix)
    weights = np.array([mix[k] for k in kinds]) / sum(mix.values())
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    refused: dict[str, int] = {kind: 0 for kind in KINDS}
    errors: list[str] = []
    added: list[tuple[int, str]] = []
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, timeout=30) as http:
        for n in range(max_requests):
            if time.time() >= deadline:
                break
            kind = kinds[int(rng.choice(len(kinds), p=weights))]
            png = pngs[int(rng.integers(len(pngs)))]
            code = rng.integers(0, 256, size=8, dtype=np.uint8).tobytes().hex()
            start = time.perf_counter()
            try:
                if kind == "search_image":
                    response = http.post(
                        "/search?k=10", files={"image": ("q.png", png, "image/png")}
                    )
                elif kind == "search_code":
                    response = http.post("/search", json={"code_hex": code, "k": 10})
                elif kind == "add_code":
                    item = {
                        "code_hex": code,
                        "label": n % 10,
                        "metadata": {"client": number, "n": n},
                    }
                    response = http.post("/items", json={"items": [item]}, headers=auth)
                else:
                    response = http.post(
                        "/items", files={"image": ("a.png", png, "image/png")},
                        data={"label": str(n % 10)}, headers=auth,
                    )  # fmt: skip
            except httpx.TransportError:  # the server is down (killed, restarting)
                refused[kind] += 1
                time.sleep(0.02)
                continue
            elapsed = time.perf_counter() - start
            expected = 201 if kind.startswith("add") else 200
            if response.status_code != expected:
                errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
                continue
            latencies[kind].append(elapsed)
            if kind.startswith("add"):
                item = response.json()["items"][0]
                added.append((int(item["id"]), item["code"]))
    out.put({"latencies": latencies, "refused": refused, "errors": errors, "added": added})


# -- checking --------------------------------------------------------------------------------------


def missing_adds(url: str, added: list[tuple[int, str]]) -> list[int]:
    """Ids of acknowledged adds that a radius-0 search of their code does not find."""
    import httpx

    missing = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for item_id, code in added:
            response = http.post("/search", json={"code_hex": code, "radius": 0})
            found = response.status_code == 200 and any(
                hit["id"] == item_id for hit in response.json()["hits"]
            )
            if not found:
                missing.append(item_id)
    return missing


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--items", type=int, default=100_000, help="indexed items")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="kill -9 at this share of the run"
    )
    parser.add_argument(
        "--mix",
        default="search_image=0.45,search_code=0.35,add_code=0.15,add_image=0.05",
        help="request kinds and their shares",
    )
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="per client, a bound")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    if set(mix) - set(KINDS):
        raise SystemExit(f"--mix kinds are {', '.join(KINDS)}")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hashlearn-serve-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    paths = build(workdir, args.items, args.bits, args.seed)
    print(f"built {args.items:,} items ({args.bits}-bit LSH on mnist5k pixels) in "
          f"{time.perf_counter() - start:.1f} s in {workdir}", flush=True)  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    server = start_server(paths, port, log)

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    began = time.time() + 3.0  # the clients load their images first
    deadline = began + args.duration
    clients = [
        context.Process(
            target=client,
            args=(i, url, deadline, mix, args.seed, args.max_requests, queue),
        )
        for i in range(args.clients)
    ]
    for process in clients:
        process.start()
    time.sleep(max(0.0, began + args.kill_at * args.duration - time.time()))
    killed = time.perf_counter()
    kill_9(server)
    server = start_server(paths, port, log)
    downtime = time.perf_counter() - killed
    print(f"killed the server with SIGKILL and restarted it: down {downtime:.2f} s", flush=True)
    reports = [queue.get(timeout=args.duration + 600) for _ in clients]
    for process in clients:
        process.join(60)
    elapsed = time.time() - began

    latencies = {kind: [v for r in reports for v in r["latencies"][kind]] for kind in KINDS}
    refused = {kind: sum(r["refused"][kind] for r in reports) for kind in KINDS}
    errors = [e for r in reports for e in r["errors"]]
    added = [a for r in reports for a in r["added"]]
    answered = sum(len(v) for v in latencies.values())
    every = [v for values in latencies.values() for v in values]

    missing_live = missing_adds(url, added)
    kill_9(server)
    server = start_server(paths, port, log)
    missing_restarted = missing_adds(url, added)
    server.terminate()
    server.wait(30)

    rows = []
    for kind in (*KINDS, "all"):
        values = every if kind == "all" else latencies[kind]
        rows.append(
            {
                "kind": kind,
                "requests": len(values),
                "per_s": len(values) / elapsed,
                "p50_ms": percentile_ms(values, 50),
                "p99_ms": percentile_ms(values, 99),
                "refused_while_down": sum(refused.values()) if kind == "all" else refused[kind],
            }
        )
    print(f"\n{args.clients} client processes, {elapsed:.1f} s, {args.items:,} indexed items, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")  # fmt: skip
    header = f"{'kind':<13} {'requests':>9} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['kind']:<13} {row['requests']:>9,} {row['per_s']:>8.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['refused_while_down']:>8}"
        )
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"downtime after kill -9: {downtime:.2f} s (restart replays the store)")
    print(
        f"acknowledged adds: {len(added):,}; not found after the run: {len(missing_live)}; "
        f"not found after a second kill -9 and restart: {len(missing_restarted)}"
    )
    result = {
        "duration_s": elapsed,
        "clients": args.clients,
        "items": args.items,
        "bits": args.bits,
        "mix": mix,
        "answered": answered,
        "rows": rows,
        "errors": len(errors),
        "error_examples": errors[:5],
        "downtime_s": downtime,
        "acknowledged_adds": len(added),
        "missing_after_run": len(missing_live),
        "missing_after_second_kill": len(missing_restarted),
        "cpus": os.cpu_count(),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results -> {args.out}")
    if errors or missing_live or missing_restarted:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
