"""Fuzzing the service's store files (issue 18): a small real store, its database and identity
record mutated (bit flips, truncations, dropped tables, rows and meta values of any type), then
the service started over it in process. Every start either serves (and every item it lists can be
sent as the routes send it) or stops with a hashlearn exception, never another exception.

The counts of outcomes are printed (``pytest -s``) at the end of the module."""

from __future__ import annotations

import collections
import json
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the dev extra (hypothesis) is not installed")
pytest.importorskip("pydantic", reason="the serve extra (pydantic) is not installed")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _serve_support import open_test_service, png_bytes
from hashlearn.encoding import DecodedImage
from hashlearn.exceptions import HashlearnError
from hashlearn.serve import NewItem
from hashlearn.serve.schemas import Item, ItemPage

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples every run: a bounded, repeatable time
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OUTCOMES: collections.Counter[tuple[str, str]] = collections.Counter()
TIMES: list[float] = []


@pytest.fixture(scope="module")
def seed(files, tmp_path_factory):
    """A store of six added items (three with images, labels, metadata) and two deletions."""
    folder = tmp_path_factory.mktemp("fuzz-seed") / "data"
    service = open_test_service(files, folder)
    for row in range(6):
        code = np.array([[row * 37 % 256, row % 16]], dtype=np.uint8)
        image = DecodedImage(png_bytes(files["X"][row]), None, "png") if row % 2 else None
        service.add([NewItem(code, label=row, metadata={"n": row, "s": "é"}, image=image)])
    service.delete(100)
    service.delete(702)
    service.close()  # the last connection checkpoints the write-ahead log into the database
    yield folder
    print(f"\nstore fuzz: {sum(OUTCOMES.values())} starts in {sum(TIMES):.1f} s")
    for (family, outcome), count in sorted(OUTCOMES.items()):
        print(f"  {family}: {outcome} {count}")


def _start(files, seed, mutate, family):
    """Copy the seed store, mutate it, start the service over it; count the outcome."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "data"
        shutil.copytree(seed, folder)
        mutate(folder)
        try:
            service = open_test_service(files, folder)
        except HashlearnError as exc:
            OUTCOMES[family, f"refused ({type(exc).__name__})"] += 1
            assert "\n" not in str(exc)
        else:
            try:  # every added item can be answered, as the routes check and send it
                added = sorted(service.catalog.added)
                page = service.list_items(len(files["ids"]) - 10, 1000)  # the added ones' page
                ItemPage.model_validate(page).model_dump_json()
                for item_id in added:
                    item = service.get_item(item_id)
                    Item.model_validate(item).model_dump_json()
                    json.dumps(item, allow_nan=False, ensure_ascii=False).encode()
                OUTCOMES[family, "started"] += 1
            finally:
                service.close()
    TIMES.append(time.perf_counter() - began)


def _flip(path, flips):
    data = bytearray(path.read_bytes())
    for offset, bit in flips:
        data[offset % len(data)] ^= 1 << bit
    path.write_bytes(bytes(data))


def _sql(folder, *statements, parameters=()):
    """Run ``statements`` in one connection (no syncs: the copy is thrown away); the last one
    with ``parameters``."""
    db = sqlite3.connect(folder / "items.sqlite3", isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")
        for statement in statements[:-1]:
            db.execute(statement)
        db.execute(statements[-1], parameters)
    finally:
        db.close()


flips = st.lists(
    st.tuples(st.one_of(st.integers(0, 4095), st.integers(0, 1 << 20)), st.integers(0, 7)),
    min_size=1,
    max_size=6,
)


@settings(FUZZ, max_examples=200)
@given(flips=flips)
def test_bit_flips_in_the_database(files, seed, flips):
    _start(files, seed, lambda folder: _flip(folder / "items.sqlite3", flips), "bit flips")


@settings(FUZZ, max_examples=25)
@given(share=st.floats(0, 1))
def test_truncated_databases(files, seed, share):
    def cut(folder):
        path = folder / "items.sqlite3"
        os.truncate(path, int(path.stat().st_size * share))

    _start(files, seed, cut, "truncations")


any_value = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.sampled_from(["png", "jpg", "{}", '{"a": 1}', "[1]", "NaN", "{" * 200, "0", "9" * 25]),
)


META_KEYS = ["next_id", "store_id", "format", "version", "n_bits", "model_sha256", "index_sha256"]


@settings(FUZZ, max_examples=200)
@given(
    target=st.one_of(
        st.tuples(
            st.just("items"),
            st.sampled_from(["id", "code", "label", "metadata", "image"]),
            st.integers(700, 705),
        ),
        st.tuples(st.just("deleted"), st.just("id"), st.just(100)),
        st.tuples(st.just("meta"), st.sampled_from(["key", "value"]), st.sampled_from(META_KEYS)),
    ),
    value=any_value,
    loose=st.booleans(),
)
def test_rows_of_any_value(files, seed, target, value, loose):
    """A value of any type in any column of a row (in tables rebuilt without their constraints,
    or as they are: then a constraint may refuse it)."""
    table, column, row = target

    def damage(folder):
        statements = []
        if loose:
            for name in ("items", "deleted", "meta"):
                statements += [
                    f"CREATE TABLE loose AS SELECT * FROM {name}",
                    f"DROP TABLE {name}",
                    f"ALTER TABLE loose RENAME TO {name}",
                ]
        key = "key" if table == "meta" else "id"
        statements.append(f"UPDATE {table} SET {column} = ? WHERE {key} = ?")
        try:
            _sql(folder, *statements, parameters=(value, row))
        except sqlite3.Error:  # a constraint refused the value
            pass

    _start(files, seed, damage, "row values")


@settings(FUZZ, max_examples=60)
@given(
    action=st.sampled_from(
        [
            "DROP TABLE items",
            "DROP TABLE deleted",
            "DROP TABLE meta",
            "DELETE FROM meta",
            "DELETE FROM meta WHERE key = 'store_id'",
            "DELETE FROM meta WHERE key = 'format'",
            "UPDATE meta SET value = 'x' WHERE key = 'store_id'",
            "ALTER TABLE items DROP COLUMN image",
            "ALTER TABLE items RENAME TO things",
            "CREATE VIEW v AS SELECT 1",
            "INSERT INTO deleted VALUES (5)",
            "INSERT INTO items VALUES (100, X'0000', NULL, NULL, NULL)",
            "remove database",
            "remove record",
            "empty database",
            "empty record",
        ]
    ),
    record=st.one_of(st.none(), flips, st.binary(max_size=64)),
)
def test_tables_and_the_identity_record(files, seed, action, record):
    def damage(folder):
        if action == "remove database":
            (folder / "items.sqlite3").unlink()
        elif action == "remove record":
            (folder / "store.json").unlink()
        elif action == "empty database":
            (folder / "items.sqlite3").write_bytes(b"")
        elif action == "empty record":
            (folder / "store.json").write_bytes(b"")
        else:
            _sql(folder, action)
        if record is not None and (folder / "store.json").exists():
            if isinstance(record, bytes):
                (folder / "store.json").write_bytes(record)
            elif (folder / "store.json").stat().st_size:
                _flip(folder / "store.json", record)

    _start(files, seed, damage, "tables and record")
