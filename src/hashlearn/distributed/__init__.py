"""Beyond one machine, on Ray: image folders encoded by a pool of workers, and an index split
into shards searched as one.

* :func:`encode_files`: a folder of images encoded on a Ray cluster in resumable shards; the
  codes equal those of :func:`~hashlearn.encoding.encode_image_files` (the same decoding and
  encoding function runs in every worker).
* :func:`write_sharded_index`: items split by ``id % n_shards`` into shard index files of any
  type, listed in a checksummed JSON manifest (no Ray needed).
* :class:`ShardedIndex`: the shards, each memory-mapped by one Ray actor, with the index
  contract; its results are exactly those of one index over all items.

Ray is the ``ray`` extra (``pip install 'hashlearn[ray]'``), imported on first use.

>>> from hashlearn.distributed import ShardedIndex, encode_files
>>> encode_files("model.safetensors", "photos/", "photos-codes/", address="auto")  # doctest: +SKIP
>>> with ShardedIndex("photos.json", address="auto") as index:  # doctest: +SKIP
...     D, I = index.search(queries, 10)
"""

from hashlearn.distributed._ray import connect
from hashlearn.distributed.encode import DistributedCodes, encode_files
from hashlearn.distributed.manifest import (
    ShardManifest,
    is_manifest,
    read_manifest,
    write_sharded_index,
)
from hashlearn.distributed.sharded import ShardedIndex

__all__ = [
    "DistributedCodes",
    "ShardManifest",
    "ShardedIndex",
    "connect",
    "encode_files",
    "is_manifest",
    "read_manifest",
    "write_sharded_index",
]
