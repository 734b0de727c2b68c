"""``popcount64``: the number of set bits of a ``uint64`` inside numba-compiled kernels.

The hash-table and multi-index probes, the evaluation engine and the numba scans use it; LLVM
lowers it to one ``popcnt`` instruction where the CPU has it.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

__all__ = ["popcount64"]


@intrinsic
def popcount64(typingctx, x):
    """Number of set bits of a ``uint64`` (one ``popcnt`` instruction where the CPU has it)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen
