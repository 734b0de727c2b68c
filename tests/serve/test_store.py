"""The service's data folder (issue 18, items 5, 6, 8, 12 and 13): one service per folder, a store
that does not start empty over a lost database, damaged rows refused by name, a full or read-only
store answered 507/503 with nothing half-written, and no temporary files left from a crash."""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
import warnings

import numpy as np
import pytest

from _serve_support import AUTH, open_test_service, png_bytes, stop_process, wait_for_health
from hashlearn.encoding import DecodedImage
from hashlearn.exceptions import FileFormatError, HashlearnError
from hashlearn.serve import NewItem
from hashlearn.serve.store import (
    MAX_METADATA_DEPTH,
    FolderInUseError,
    StorageFullError,
    StorageReadOnlyError,
    metadata_json,
)

BASE_IDS = range(100, 700)  # the ids of lsh_files' index


def code(hex_text):
    return np.frombuffer(bytes.fromhex(hex_text), dtype=np.uint8).reshape(1, -1)


def png_of(files, row):
    png = png_bytes(files["X"][row])
    return DecodedImage(png, None, "png")


@pytest.fixture
def data(files, tmp_path):
    """A store with items 700 (image, label 1, metadata), 701 (code only) and base 100 deleted."""
    folder = tmp_path / "data"
    service = open_test_service(files, folder)
    service.add(
        [
            NewItem(code("0f00"), label=1, metadata={"a": [1, 2]}, image=png_of(files, 40)),
            NewItem(code("ff0f")),
        ]
    )
    service.delete(100)
    service.close()
    return folder


def sql(folder, *statements):
    """Run SQL on a closed store's database, as a tool (or a probe) would."""
    db = sqlite3.connect(folder / "items.sqlite3", isolation_level=None)
    try:
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()


def refusal(files, folder, error=FileFormatError):
    """The one-line message of the refusal to open the service over ``folder``."""
    with pytest.raises(error) as caught:
        open_test_service(files, folder).close()
    message = str(caught.value)
    assert "\n" not in message
    return message


def client_of(service):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    from hashlearn.serve import create_app

    return TestClient(create_app(service))


# ------------------------------------------------------------------ item 5: one service per folder
def test_a_second_service_on_the_folder_is_refused_until_the_first_closes(files, data):
    """Item 5: two services on one folder collided on ids and overwrote each other's images."""
    first = open_test_service(files, data)
    try:
        message = refusal(files, data, FolderInUseError)
        assert str(data) in message and f"pid {os.getpid()}" in message
    finally:
        first.close()
    again = open_test_service(files, data)  # the lock went with the first service
    assert again.stats()["added_items"] == 2
    again.close()


def test_a_second_server_process_exits_2_naming_the_folder_and_holder(files, tmp_path):
    """Item 5 with two real ``hashlearn serve`` processes on one ``--store``."""
    pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
    from _serve_support import free_port

    folder, store = files["folder"], tmp_path / "data"
    port = free_port()

    def command(port):
        return [
            sys.executable, "-m", "hashlearn.cli", "serve", "--model",
            str(folder / "lsh.safetensors"), "--index", str(folder / "db.hlindex"),
            "--store", str(store), "--port", str(port), "--threads", "1", "--quiet",
        ]  # fmt: skip

    log = tmp_path / "first.log"
    with open(log, "wb") as out:
        first = subprocess.Popen(command(port), stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_for_health(first, f"http://127.0.0.1:{port}", log, timeout=60)
        second = subprocess.run(
            command(free_port()), capture_output=True, text=True, timeout=60, check=False
        )
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and str(store) in lines[0] and f"pid {first.pid}" in lines[0]
        assert first.poll() is None  # the first one serves on
    finally:
        stop_process(first)


# ------------------------------------------------------------------ item 6: the store's identity
def test_a_new_folder_gets_an_identity_record_that_the_database_shares(files, tmp_path):
    """Item 6: the store id is written beside the database and inside it."""
    folder = tmp_path / "new"
    open_test_service(files, folder).close()
    record = json.loads((folder / "store.json").read_text())
    db = sqlite3.connect(folder / "items.sqlite3")
    (stored,) = db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
    db.close()
    assert record["store_id"] == stored and len(stored) == 32
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("items.sqlite3-")) == [
        "images",
        "items.sqlite3",
        "store.json",
        "store.lock",
        "thumbnails",
    ]


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("empty", "is empty (0 bytes)"),
        ("drop items", "has no table 'items'"),
        ("drop meta", "has no table 'meta'"),
        ("deleted", "is missing"),
        ("garbage", "cannot be read"),
    ],
)
def test_an_emptied_store_is_refused_not_started_afresh(files, data, damage, said):
    """Item 6: a 0-byte database or a dropped table started an empty store silently (2,010
    acknowledged adds lost in the probe)."""
    database = data / "items.sqlite3"
    if damage == "empty":
        database.write_bytes(b"")
    elif damage.startswith("drop"):
        sql(data, f"DROP TABLE {damage.split()[1]}")
    elif damage == "deleted":
        database.unlink()
    else:
        database.write_bytes(os.urandom(8192))
    size = database.stat().st_size if database.exists() else None
    message = refusal(files, data)
    assert said in message and "store.json" in message and "restore the database" in message
    assert (database.stat().st_size if database.exists() else None) == size  # left as it was


def test_another_stores_database_is_refused(files, data, tmp_path):
    """Item 6: a database copied in from another store (ids differ)."""
    other = tmp_path / "other"
    open_test_service(files, other).close()
    (data / "items.sqlite3").write_bytes((other / "items.sqlite3").read_bytes())
    for suffix in ("-wal", "-shm"):
        (data / f"items.sqlite3{suffix}").unlink(missing_ok=True)
    other_id = json.loads((other / "store.json").read_text())["store_id"]
    assert f"holds store '{other_id}'" in refusal(files, data)


def test_a_lost_record_is_written_again_and_an_older_store_gets_one(files, data):
    """Item 6: a database without a record (a store of an earlier version) still opens."""
    first_id = json.loads((data / "store.json").read_text())["store_id"]
    (data / "store.json").unlink()
    open_test_service(files, data).close()
    assert json.loads((data / "store.json").read_text())["store_id"] == first_id
    (data / "store.json").unlink()
    sql(data, "DELETE FROM meta WHERE key = 'store_id'")  # as the earlier version wrote it
    service = open_test_service(files, data)
    assert service.stats()["added_items"] == 2
    service.close()
    assert json.loads((data / "store.json").read_text())["store_id"] != first_id


def test_a_store_an_earlier_version_left_half_created_is_completed(files, tmp_path):
    """Item 6: tables without meta data and without rows (an earlier version stopped between
    the two) open as that version did; with rows in them they are refused."""
    for rows, opens in ((0, True), (1, False)):
        folder = tmp_path / f"early{rows}"
        folder.mkdir()
        db = sqlite3.connect(folder / "items.sqlite3")
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE items (id INTEGER PRIMARY KEY, code BLOB NOT NULL, label INTEGER,"
            " metadata TEXT, image TEXT);"
            "CREATE TABLE deleted (id INTEGER PRIMARY KEY);"
            + "INSERT INTO deleted VALUES (100);"
            * rows
        )
        db.close()
        if opens:
            open_test_service(files, folder).close()
            assert (folder / "store.json").exists()
        else:
            assert "holds items but no meta data" in refusal(files, folder)


@pytest.mark.parametrize("text", ["", "{", '{"format": "hashlearn.serve-store"}', "[1]" * 5000])
def test_a_damaged_record_is_refused(files, data, text):
    """Item 6: the identity record itself damaged is refused, saying how to rewrite it."""
    (data / "store.json").write_text(text)
    assert "delete" in refusal(files, data)


def test_an_empty_database_without_record_is_refused_too(files, tmp_path):
    """Item 6: a 0-byte database of an older store (no record) is not taken for a new store."""
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "items.sqlite3").write_bytes(b"")
    assert "is empty (0 bytes)" in refusal(files, folder)


# ------------------------------------------------------------------ item 8: damaged rows
def _rebuild_without_constraints(folder):
    for table in ("items", "deleted"):
        sql(
            folder,
            f"CREATE TABLE loose AS SELECT * FROM {table}",
            f"DROP TABLE {table}",
            f"ALTER TABLE loose RENAME TO {table}",
        )


DEEP = "[" * 300 + "]" * 300

ROW_DAMAGE = {
    # name: (statements, expected words)
    "code NULL": (["UPDATE items SET code = NULL WHERE id = 701"], "item 701: its code is NULL"),
    "code as text": (["UPDATE items SET code = 'ff0f' WHERE id = 701"], "item 701: its code"),
    "code too long": (["UPDATE items SET code = X'ff0f00' WHERE id = 701"], "3 bytes"),
    "code past its bits": (["UPDATE items SET code = X'ffff' WHERE id = 701"], "beyond bit 12"),
    "label as text": (["UPDATE items SET label = 'cat' WHERE id = 700"], "item 700: its label"),
    "label as real": (["UPDATE items SET label = 1.5 WHERE id = 700"], "item 700: its label"),
    "metadata not JSON": (["UPDATE items SET metadata = '{oops' WHERE id = 700"], "metadata"),
    "metadata a list": (["UPDATE items SET metadata = '[1]' WHERE id = 700"], "JSON object"),
    "metadata NaN": (["UPDATE items SET metadata = '{\"a\": NaN}' WHERE id = 700"], "NaN"),
    "metadata lone surrogate": (["UPDATE items SET metadata = '{\"a\": \"\\ud800\"}' WHERE id = 700"],
                                "surrogate"),
    "metadata not UTF-8": (["UPDATE items SET metadata = CAST(X'7b22ff223a317d' AS TEXT) "
                            "WHERE id = 700"], "item 700: its metadata"),
    "metadata a blob": (["UPDATE items SET metadata = X'7b7d' WHERE id = 700"], "not JSON text"),
    "image outside the folder": (["UPDATE items SET image = '../../../etc/passwd' WHERE id = 700"],
                                 "item 700: its image"),
    "negative id": (["UPDATE items SET id = -5 WHERE id = 701"], "item -5: a negative id"),
    "id as text": (["UPDATE items SET id = 'seven' WHERE id = 701"], "'seven'"),
    "duplicate id": (["INSERT INTO items SELECT * FROM items WHERE id = 701"],
                     "item 701: two rows have this id"),
    "id of a base item": (["UPDATE items SET id = 150 WHERE id = 701"], "item 150"),
    "next id not a number": (["UPDATE meta SET value = 'many' WHERE key = 'next_id'"],
                             "next id is 'many'"),
    "deleted id as text": (["INSERT INTO deleted VALUES ('x')"], "deleted base id is 'x'"),
    "trigger": (["CREATE TRIGGER t AFTER INSERT ON items BEGIN DELETE FROM deleted; END"],
                "holds a trigger 't'"),
}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(ROW_DAMAGE))
def test_a_damaged_row_is_refused_by_name(files, data, damage):
    """Item 8: corrupted rows gave tracebacks at start (TypeError, JSONDecodeError, KeyError,
    IntegrityError...) or were served and failed later; now one line naming the row."""
    statements, said = ROW_DAMAGE[damage]
    _rebuild_without_constraints(data)  # so that NULLs, texts and duplicates can be stored
    sql(data, *statements)
    message = refusal(files, data)
    assert said in message, message


def test_a_symlinked_image_is_refused(files, data, tmp_path):
    """Item 8: an image file that is a link could show any file of the machine."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    image = data / "images" / "700.png"
    image.unlink()
    image.symlink_to(secret)
    assert "item 700: its image" in refusal(files, data)


def test_what_is_already_lost_is_passed_over(files, data, caplog):
    """Item 8: a missing image file and deleted ids of no base item do not stop the service
    (refusing would save nothing): served without the image, ignored."""
    (data / "images" / "700.png").unlink()
    sql(data, "INSERT INTO deleted VALUES (5)")
    with caplog.at_level("WARNING", logger="hashlearn.serve"):
        service = open_test_service(files, data)
    try:
        assert service.get_item(700)["has_image"] is False
        assert service.stats()["deleted_base_items"] == 1
        assert "700.png is missing" in caplog.text and "not base items" in caplog.text
    finally:
        service.close()


def test_writes_refuse_metadata_the_store_would_refuse_at_start(files, tmp_path):
    """Item 8: what the writes accept, the start accepts (the same check on both sides)."""
    service = open_test_service(files, tmp_path / "data")
    try:
        for bad, said in [
            ({"a": json.loads(DEEP)}, "nested"),
            ({"a": "\ud800"}, "surrogate"),
            ({"a": float("nan")}, "JSON"),
        ]:
            with pytest.raises(HashlearnError, match=said):
                service.add([NewItem(code("0000"), metadata=bad)])
        depth = MAX_METADATA_DEPTH - 1  # the object itself is one level
        deep_enough = {"a": json.loads("[" * depth + "]" * depth)}
        assert len(metadata_json(deep_enough)) == 6 + 2 * depth
        service.add([NewItem(code("0000"), metadata=deep_enough)])
    finally:
        service.close()
    open_test_service(files, tmp_path / "data").close()


# ------------------------------------------------------------------ item 12: full, read-only
@pytest.fixture
def served(files, data):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    service = open_test_service(files, data)
    yield service, client_of(service)
    service.close()


def _store_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _failing_write(monkeypatch, number):
    """Make the store's file writes fail with ``OSError(number)`` once their first bytes are in
    the temporary file, as a disk that fills up or a folder remounted read-only does."""
    import hashlearn.serve.store as store_module

    real = store_module.atomic_write

    class Failing:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[:10])
            raise OSError(number, os.strerror(number))

    @contextlib.contextmanager
    def atomic_write(path, **options):
        with real(path, **options) as handle:
            yield Failing(handle)

    monkeypatch.setattr(store_module, "atomic_write", atomic_write)


@pytest.mark.parametrize(("number", "status"), [(errno.ENOSPC, 507), (errno.EROFS, 503)])
def test_a_failed_image_write_answers_507_or_503_and_leaves_nothing(
    files, data, served, monkeypatch, number, status
):
    """Item 12: a full disk or a read-only folder gave a bare 500."""
    _, client = served
    before = _store_files(data)
    _failing_write(monkeypatch, number)
    png = png_bytes(files["X"][50])
    answer = client.post("/items", files={"image": ("p.png", png)}, data={"label": "3"})
    assert answer.status_code == status, answer.text
    assert "was not" in answer.json()["error"] or "were not" in answer.json()["error"]
    assert _store_files(data) == before  # no image, no temporary file
    assert client.get("/items/702").status_code == 404
    monkeypatch.undo()
    again = client.post("/items", files={"image": ("p.png", png)}, data={"label": "3"})
    assert again.status_code == 201 and again.json()["items"][0]["id"] == 702


def test_a_full_database_answers_507_and_removes_the_image_it_wrote(files, data, served):
    """Item 12: SQLite's "database or disk is full" at the commit, after the image file was
    written: the image is removed, the row rolled back, the index unchanged."""
    service, client = served
    db = service.store._db
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own quota: a real SQLITE_FULL
    before, count = _store_files(data), service.stats()["items"]
    png = png_bytes(files["X"][50])
    big = {"metadata": {"x": "y" * 3000}, "code_hex": "0000"}  # 4 of them need new pages
    body = {"items": [{"image_base64": base64.b64encode(png).decode()}] + [big] * 4}
    answer = client.post("/items", json=body)
    assert answer.status_code == 507 and "no space left" in answer.json()["error"], answer.text
    assert _store_files(data) == before and service.stats()["items"] == count
    db.execute("PRAGMA max_page_count = 1073741823")
    assert client.post("/items", json=body).status_code == 201


def test_a_read_only_database_answers_503_to_adds_and_deletes(data, served):
    """Item 12: SQLite's "attempt to write a readonly database" while serving."""
    service, client = served
    service.store._db.execute("PRAGMA query_only = 1")
    added = client.post("/items", json={"items": [{"code_hex": "0000"}]}, headers=AUTH)
    assert added.status_code == 503 and "read-only" in added.json()["error"], added.text
    assert client.delete("/items/700").status_code == 503
    assert client.delete("/items/101").status_code == 503
    assert (
        client.get("/items/700").status_code == 200 and client.get("/items/101").status_code == 200
    )
    service.store._db.execute("PRAGMA query_only = 0")
    assert client.delete("/items/700").status_code == 200


def test_a_read_only_folder_is_refused_at_start(files, data, monkeypatch):
    """Item 12: the service started on a read-only store and failed every write; now it refuses
    to start (a read-only mount: os.access says so, for root too)."""
    real_access = os.access

    def access(path, mode, **options):
        if mode == os.W_OK and str(path).startswith(str(data)):
            return False
        return real_access(path, mode, **options)

    monkeypatch.setattr(os, "access", access)
    message = refusal(files, data, StorageReadOnlyError)
    assert "read-only" in message and "--store" in message


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0,
    reason="root writes into a folder whatever its mode (the monkeypatched test above covers it)",
)
def test_a_chmod_read_only_folder_is_refused_at_start(files, data):
    """Item 12 with real permissions."""
    for path in (data, data / "images", data / "items.sqlite3"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        assert "read-only" in refusal(files, data, StorageReadOnlyError)
    finally:
        for path in (data, data / "images", data / "items.sqlite3"):
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_full_disk_at_start_is_one_line(files, tmp_path, monkeypatch):
    """Item 12: creating a store on a full disk is a StorageFullError, not a traceback."""
    import hashlearn.serve.store as store_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_module, "create_temporary", full)
    assert "no space left" in refusal(files, tmp_path / "data", StorageFullError)
    assert not (tmp_path / "data" / "store.json").exists()


# ------------------------------------------------------------------ item 13: stale temporaries
def test_the_start_removes_temporary_files_of_interrupted_writes(files, data):
    """Item 13: kill -9 left hidden ``.NAME.*.tmp`` files (up to 320 MB) that nothing cleaned."""
    leftovers = [
        data / "images" / ".702.png.4242-0123abcd.tmp",
        data / ".items.sqlite3.77-89abcdef.tmp",
        data / ".store.json.0badf00d.tmp",  # as named before the pid was recorded
        data / "thumbnails" / ".700-abc.thumb.1-00000000.tmp",
    ]
    (data / "thumbnails").mkdir(exist_ok=True)
    for path in leftovers:
        path.write_bytes(b"x" * 1000)
    kept = data / "images" / ".hidden-notes.txt"
    kept.write_text("not a temporary file of hashlearn")
    open_test_service(files, data).close()
    assert not any(path.exists() for path in leftovers) and kept.exists()
