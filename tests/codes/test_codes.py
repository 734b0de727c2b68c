import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashlearn.codes import (
    check_codes,
    code_statistics,
    codes_to_hex,
    hamming_distance,
    n_bytes,
    pack_bits,
    pack_signs,
    unpack_bits,
)
from hashlearn.exceptions import CodeFormatError, InvalidInputError


@settings(max_examples=200, deadline=None)
@given(n_bits=st.integers(1, 130), n=st.integers(0, 6), seed=st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(n_bits, n, seed):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n, n_bits)).astype(np.uint8)
    codes = pack_bits(bits)
    assert codes.dtype == np.uint8
    assert codes.shape == (n, (n_bits + 7) // 8)
    np.testing.assert_array_equal(unpack_bits(codes, n_bits), bits)
    signed = bits.astype(np.int8) * 2 - 1
    np.testing.assert_array_equal(pack_bits(signed), codes)
    np.testing.assert_array_equal(unpack_bits(codes, n_bits, signed=True), signed)
    check_codes(codes, n_bits)  # padding bits are zero


def test_bit_order_is_lsb_first():
    # bit i lives in byte i // 8 at position i % 8: bits 0 and 9 set -> bytes 0x01, 0x02
    bits = np.zeros((1, 16), dtype=np.uint8)
    bits[0, 0] = bits[0, 9] = 1
    assert pack_bits(bits).tolist() == [[0x01, 0x02]]
    assert codes_to_hex(pack_bits(bits)) == ["0102"]


def test_bit_order_matches_faiss():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    values = rng.standard_normal((20, 64)).astype(np.float32)
    values[0, :5] = 0.0  # x >= 0 gives bit 1 in both
    expected = np.zeros((20, 8), dtype=np.uint8)
    faiss.fvecs2bitvecs(faiss.swig_ptr(values), faiss.swig_ptr(expected), 64, 20)
    np.testing.assert_array_equal(pack_signs(values), expected)


def _reference_hamming(a, b):
    return np.array([[sum(bin(x ^ y).count("1") for x, y in zip(ra, rb)) for rb in b] for ra in a])


@settings(max_examples=60, deadline=None)
@given(
    n_bits=st.integers(1, 300),
    na=st.integers(0, 5),
    nb=st.integers(0, 7),
    seed=st.integers(0, 10_000),
)
def test_hamming_distance_matches_reference(n_bits, na, nb, seed):
    rng = np.random.default_rng(seed)
    a = pack_bits(rng.integers(0, 2, (na, n_bits)))
    b = pack_bits(rng.integers(0, 2, (nb, n_bits)))
    distances = hamming_distance(a, b)
    assert distances.dtype == np.int32 and distances.shape == (na, nb)
    np.testing.assert_array_equal(distances, _reference_hamming(a, b).reshape(na, nb))


def test_hamming_distance_blocks(monkeypatch):
    import hashlearn.codes.distance as codes_module

    monkeypatch.setattr(codes_module, "_BLOCK_ELEMENTS", 64)
    rng = np.random.default_rng(1)
    a = pack_bits(rng.integers(0, 2, (37, 70)))
    b = pack_bits(rng.integers(0, 2, (91, 70)))
    np.testing.assert_array_equal(hamming_distance(a, b), _reference_hamming(a, b))


def test_pack_signs_threshold_at_zero():
    assert unpack_bits(pack_signs(np.array([[-0.5, 0.0, 2.0]])), 3).tolist() == [[0, 1, 1]]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((2, 2), dtype=np.int64), "dtype uint8"),
        (np.zeros((2, 2), dtype=np.float32), "dtype uint8"),
        (np.zeros(4, dtype=np.uint8), "2-D"),
        ([[0, 1]], "numpy.ndarray"),
    ],
)
def test_check_codes_rejects_wrong_type(bad, message):
    with pytest.raises(CodeFormatError, match=message):
        check_codes(bad)


def test_check_codes_rejects_wrong_width_and_padding():
    with pytest.raises(CodeFormatError, match="2 bytes wide, but 24-bit codes take 3 bytes"):
        check_codes(np.zeros((1, 2), dtype=np.uint8), 24)
    with pytest.raises(CodeFormatError, match="bits set beyond bit 12"):
        check_codes(np.array([[0, 0x10]], dtype=np.uint8), 12)


def test_pack_bits_rejects_other_values():
    with pytest.raises(InvalidInputError, match=r"\{0, 1\} or all in \{-1, \+1\}"):
        pack_bits(np.array([[0, 2, 1]]))
    with pytest.raises(InvalidInputError, match="1 to 4096 columns"):
        pack_bits(np.zeros((1, 4097)))
    with pytest.raises(InvalidInputError, match="NaN"):
        pack_signs(np.array([[np.nan, 1.0]]))


def test_n_bytes_limits():
    assert n_bytes(1) == 1 and n_bytes(8) == 1 and n_bytes(9) == 2 and n_bytes(4096) == 512
    with pytest.raises(InvalidInputError, match="n_bits must be <= 4096"):
        n_bytes(4097)
    with pytest.raises(InvalidInputError, match="n_bits must be >= 1"):
        n_bytes(0)


def test_hamming_distance_width_mismatch():
    with pytest.raises(CodeFormatError, match="different widths"):
        hamming_distance(np.zeros((1, 2), np.uint8), np.zeros((1, 3), np.uint8))


def test_code_statistics_by_hand():
    # bit 0 always set; bits 1 and 2 balanced and uncorrelated; bit 3 equals bit 1
    bits = np.array([[1, 0, 1, 0], [1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]])
    stats = code_statistics(pack_bits(bits), 4)
    np.testing.assert_allclose(stats.bit_means, [1.0, 0.6, 0.6, 0.6])
    # bits 1 and 2: E[b1 b2] = 2/5, so cov = 0.4 - 0.36 = 0.04 over var 0.24: r = 1/6
    expected = np.array(
        [[1, 0, 0, 0], [0, 1, 1 / 6, 1], [0, 1 / 6, 1, 1 / 6], [0, 1, 1 / 6, 1]], dtype=float
    )
    np.testing.assert_allclose(stats.correlation, expected, atol=1e-12)
    assert stats.mean_abs_correlation == pytest.approx((1 / 6 + 1 + 1 / 6) * 2 / 12)
    assert (stats.distinct, stats.largest_bucket, stats.n_codes) == (4, 2, 5)
    # shares 1/5, 1/5, 1/5, 2/5
    assert stats.entropy_bits == pytest.approx(-(3 * 0.2 * np.log2(0.2) + 0.4 * np.log2(0.4)))
    with pytest.raises(InvalidInputError, match="empty"):
        code_statistics(np.zeros((0, 1), np.uint8), 4)
    with pytest.raises(CodeFormatError):
        code_statistics(np.zeros((3, 2), np.uint8), 4)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 70).flatmap(
        lambda n_bits: st.tuples(
            st.just(n_bits), st.lists(st.integers(0, 2**n_bits - 1), min_size=2, max_size=40)
        )
    )
)
def test_code_statistics_match_numpy(case):
    n_bits, values = case
    bits = np.array([[(v >> i) & 1 for i in range(n_bits)] for v in values], dtype=np.uint8)
    stats = code_statistics(pack_bits(bits), n_bits)
    varying = bits.std(axis=0) > 0
    reference = np.corrcoef(bits[:, varying].T.astype(float)) if varying.sum() > 1 else None
    if reference is not None:
        np.testing.assert_allclose(
            stats.correlation[np.ix_(varying, varying)], reference, atol=1e-9
        )
    assert (stats.correlation[~varying] == 0).sum() == (~varying).sum() * (n_bits - 1)
    _, counts = np.unique(bits, axis=0, return_counts=True)
    assert stats.distinct == len(counts) and stats.largest_bucket == counts.max()
    assert 0 <= stats.entropy_bits <= min(n_bits, np.log2(len(values))) + 1e-9
