"""Builds the optional C extension of the Hamming kernels; everything else is in pyproject.toml.

The extension holds one variant of the scan per CPU class (AVX-512 VPOPCNTDQ, AVX2, scalar),
chosen at run time from the CPU's features. It is optional: where it cannot be compiled the
package still installs and its numba scans serve instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hashlearn.codes.kernels._hamming",
            sources=["src/hashlearn/codes/kernels/_hamming.c"],
            depends=[
                "src/hashlearn/codes/kernels/_hamming_scan.h",
                "src/hashlearn/codes/kernels/_hamming_undef.h",
            ],
            extra_compile_args=["-O3", "-std=gnu11"],
            optional=True,
        )
    ]
)
