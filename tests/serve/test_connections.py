"""The served process's connections and who may talk to it (issue 18, items 3 and 9): connections
that never send a whole request head are closed after ``header_timeout`` while the service keeps
answering; connections over ``max_connections`` get 503; a Host that is not this service's is
refused (DNS rebinding); a browser's write from another site is refused; open writes beyond
loopback need saying so."""

from __future__ import annotations

import http.client
import selectors
import socket
import time
import warnings

import pytest

httpx = pytest.importorskip("httpx", reason="the dev extra (httpx) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")

from _child_server import ChildServer  # noqa: E402
from _serve_support import AUTH, png_bytes  # noqa: E402
from hashlearn.exceptions import InvalidInputError  # noqa: E402
from hashlearn.serve.limits import check_write_access, is_loopback  # noqa: E402
from hashlearn.serve.middleware import HostOriginMiddleware  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(files, tmp_path_factory):
    """No token (writes open, on loopback), a 1 s request-head deadline."""
    folder = tmp_path_factory.mktemp("connections")
    with ChildServer(
        files, folder / "data", folder / "server.log", header_timeout=HEADER_TIMEOUT
    ) as running:
        yield running


def _connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _wait_closed(sockets, timeout):
    """How many of ``sockets`` the server closed within ``timeout`` seconds (read end, or reset)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + timeout
    while closed < len(sockets) and (left := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(left):
            try:
                data = key.fileobj.recv(4096)
            except ConnectionResetError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                closed += 1
    selector.close()
    return closed


def _get(port, path, host):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_idle_and_partial_connections_are_closed_and_health_answers(server):
    """Pins item 3: connections sending nothing or a partial header stayed open forever (300 of
    300 after 45 s), until they used up the file descriptors."""
    sockets = [_connect(server.port) for _ in range(40)]
    for sock in sockets[::2]:  # half send a request head that never ends
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
    keep_alive = _connect(server.port)  # a whole request, then a head that never ends
    keep_alive.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert keep_alive.recv(4096).startswith(b"HTTP/1.1 200")
    keep_alive.sendall(b"GET /health HTTP/1.1\r\n")
    sockets.append(keep_alive)
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    start = time.monotonic()
    closed = _wait_closed(sockets, timeout=HEADER_TIMEOUT + 4)
    elapsed = time.monotonic() - start
    for sock in sockets:
        sock.close()
    assert closed == len(sockets), f"{closed} of {len(sockets)} closed"
    assert elapsed < HEADER_TIMEOUT + 3
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200


def test_a_slow_request_still_gets_its_answer(server):
    """The deadline is on the request head only: a request being answered is not cut."""
    sock = _connect(server.port)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    time.sleep(HEADER_TIMEOUT / 2)
    sock.sendall(b"\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()


def test_connections_over_the_cap_get_503_until_one_closes(files, tmp_path):
    """Pins item 3: nothing bounded the open connections (1,100 exhausted the descriptors and
    /health timed out)."""
    with ChildServer(
        files, tmp_path / "data", tmp_path / "log", header_timeout=30, max_connections=8
    ) as server:
        idle = [_connect(server.port) for _ in range(8)]
        answer = _health_until(server, 503)  # once the server has accepted the 8
        assert answer.headers["retry-after"] == "1"
        assert "8 open connections" in answer.json()["error"]
        idle.pop().close()
        _health_until(server, 200)
        for sock in idle:
            sock.close()


def _health_until(server, status, timeout=10.0):
    """``GET /health`` until it answers ``status`` (then that answer), for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(server.url + "/health", timeout=5)
        if answer.status_code == status or time.monotonic() > deadline:
            assert answer.status_code == status, answer.text
            return answer
        time.sleep(0.1)


def test_a_host_not_of_this_service_gets_421(server):
    """Pins item 9: any Host was answered, so a page whose own name is rebound to 127.0.0.1
    (DNS rebinding) could read and write the service."""
    port = server.port
    status, body = _get(port, "/stats", f"rebound.attacker.example:{port}")
    assert status == 421 and b"--allowed-host" in body
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1"):
        assert _get(port, "/health", host)[0] == 200


def test_a_write_from_another_site_gets_403(server, files):
    """Pins item 9: with no token, a page on another site could POST /items (multipart,
    no-cors) and get 201."""
    png = png_bytes(files["X"][7])
    form = {"image": ("a.png", png, "image/png")}
    cross_site = [
        {"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://attacker.example"},  # a browser without Fetch Metadata
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Origin": f"http://127.0.0.1:{server.port + 1}", "Sec-Fetch-Site": "same-site"},
    ]
    for headers in cross_site:
        answer = httpx.post(server.url + "/items", files=form, headers=headers, timeout=10)
        assert answer.status_code == 403, (headers, answer.text)
        assert "another" in answer.json()["error"]
    total = httpx.get(server.url + "/health").json()["items"]
    own_page = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    assert httpx.post(server.url + "/items", files=form, headers=own_page).status_code == 201
    assert httpx.post(server.url + "/items", files=form).status_code == 201  # curl, a script
    assert httpx.get(server.url + "/health").json()["items"] == total + 2
    assert httpx.get(server.url + "/items/100", headers=cross_site[0]).status_code == 200  # read


def test_the_host_and_origin_rules(client):
    """Pins item 9 in the application: allowed names, the '*' wildcard, ports and IPv6."""
    check = HostOriginMiddleware(None, allowed_hosts=["photos.example.org"])
    for host in (
        "localhost:8000",
        "127.0.0.1",
        "[::1]:8000",
        "192.168.1.5:80",
        "PHOTOS.example.org.",
    ):
        assert check.host_allowed(host), host
    for host in ("evil.example", "localhost.evil.example:8000", ""):
        assert not check.host_allowed(host), host
    assert HostOriginMiddleware(None, allowed_hosts=["*"]).host_allowed("anything.example")
    assert HostOriginMiddleware(None, allowed_hosts=None).host_allowed("anything.example")
    # through the app (TestClient's Host is "testserver": no Host list in create_app's default)
    answer = client.delete("/items/100", headers={**AUTH, "Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    answer = client.delete("/items/100", headers={**AUTH, "Origin": "http://testserver"})
    assert answer.status_code == 200


def test_open_writes_beyond_loopback_need_saying_so(files, tmp_path, service, capsys, monkeypatch):
    """Pins item 9: listening beyond loopback without a token served open writes to anyone."""
    monkeypatch.delenv("HASHLEARN_SERVE_TOKEN", raising=False)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host)
        check_write_access(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(InvalidInputError, match="--open-writes"):
            check_write_access(host, None)
        check_write_access(host, "a-token")
        check_write_access(host, None, open_writes=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hashlearn.serve import run_server
    with pytest.raises(InvalidInputError, match="beyond this machine"):
        run_server(service, host="0.0.0.0", port=1)  # refused before listening
    from hashlearn.cli import main

    folder = files["folder"]
    argv = ["serve", "--model", str(folder / "lsh.safetensors"), "--index"]
    argv += [str(folder / "db.hlindex"), "--host", "0.0.0.0", "--store", str(tmp_path / "d")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--open-writes" in error
