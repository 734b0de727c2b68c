"""Packed binary codes and the ranking primitives over them.

- :mod:`.packing`: the packed layout every hashlearn boundary speaks (faiss' layout), packing,
  unpacking and checking;
- :mod:`.distance`: Hamming distances between two sets of codes;
- :mod:`.statistics`: how a set of codes uses its bits and buckets;
- :mod:`.ranking`: Hamming ranking and relevance; :mod:`.metrics`: AP, precision and recall over
  ranked relevance (pure functions);
- :mod:`.kernels`: the compiled Hamming scans (and ``popcount64``) that the indexes, the
  evaluation engine and the near-duplicate join build on;
- :mod:`.keys`: the one result-key encoding, ``distance << 40 | rank``, and its top-k heap.
"""

from hashlearn.codes.distance import hamming_distance
from hashlearn.codes.packing import (
    MAX_BITS,
    check_codes,
    codes_to_hex,
    n_bytes,
    pack_bits,
    pack_signs,
    unpack_bits,
)
from hashlearn.codes.statistics import CodeStatistics, code_statistics

__all__ = [
    "MAX_BITS",
    "CodeStatistics",
    "check_codes",
    "code_statistics",
    "codes_to_hex",
    "hamming_distance",
    "n_bytes",
    "pack_bits",
    "pack_signs",
    "unpack_bits",
]
