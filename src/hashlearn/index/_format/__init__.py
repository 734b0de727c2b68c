"""The file format of hashlearn indexes: :mod:`.layout` (what a file holds, byte by byte),
:mod:`.writing` and :mod:`.reading`."""

from hashlearn.index._format.layout import ALIGNMENT, FORMAT_VERSION, MAGIC, IndexFile
from hashlearn.index._format.reading import read_index_file
from hashlearn.index._format.writing import write_index_file

__all__ = [
    "ALIGNMENT",
    "FORMAT_VERSION",
    "MAGIC",
    "IndexFile",
    "read_index_file",
    "write_index_file",
]
