"""Training one model on several processes with ``torch.distributed`` (data parallelism).

    torchrun --nproc_per_node=2 -m hashlearn fit --method dsh --data train.npz --out dsh.safetensors

The :class:`~hashlearn.hashers.deep.trainer.Trainer` asks :func:`setup_distributed` whether it
runs in a process group: one that the caller initialised, or one it initialises itself from the
environment variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``), with the gloo backend on the CPU and nccl on GPUs (process
``LOCAL_RANK`` takes GPU ``LOCAL_RANK``). Without either it trains in one process, as always.

How a step of ``N`` processes equals a step of one process on the same global batch:

- **One batch order.** Every process draws the same seeded permutation (the seed is rank 0's),
  cuts it into the same global batches of ``batch_size`` as one process would, and takes its
  contiguous share of each (:func:`shard`, sizes differing by at most one). Augmentation draws
  are made for the whole global batch and sliced the same way.
- **Losses see the global batch.** The outputs of the shares are gathered, in order, into the
  global batch's outputs on every process (:func:`gather_rows`, differentiable), with their
  labels; the indices are the global batch's. Every process thus computes the same loss ``L``,
  and losses with state (a memory of all outputs, DSDH's discrete codes, HashNet's counter)
  update it identically everywhere. The loss modules know nothing of this. A network that gives
  several outputs per image, view-major (:class:`~hashlearn.hashers.deep.augment.TwoViews`,
  ``views = 2``), is told its share's rows of the global batch, draws its views as one process
  would for the whole batch, and its outputs are gathered view by view (:func:`gather_views`).
- **Gradients.** The backward of the gather sums the incoming gradients over the processes
  (an all-reduce), so process ``r`` gets ``N dL/dout_r`` for its outputs;
  ``DistributedDataParallel`` then averages the parameter gradients over the ``N`` processes:
  ``1/N sum_r N dL/dout_r dout_r/dtheta = dL/dtheta``, the gradient of one process on the global
  batch (up to the order of floating-point sums). Parameters of the loss, if any, see the same
  ``L`` on every process and so the same gradient without communication.
- **BatchNorm.** On GPUs, BatchNorm layers become ``SyncBatchNorm`` (statistics of the global
  batch). PyTorch has no SyncBatchNorm on the CPU: there each process normalises by its share's
  statistics, and a network with BatchNorm is not step for step the one-process network.
  Dropout masks are drawn per process, so they differ from one process's too.
- **Rank 0 decides and writes.** Validation mAP is computed on rank 0 and broadcast, so early
  stopping and the best-epoch choice are the same everywhere; the CSV log, checkpoints and (in
  the CLI) the model file are written by rank 0 only; the progress bar shows on rank 0. A
  checkpoint of a distributed run resumes like any other (every process reads it), with any
  number of processes: the global batches do not depend on it.
"""

from __future__ import annotations

import atexit
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hashlearn.exceptions import InvalidInputError

__all__ = [
    "Distributed",
    "gather_rows",
    "gather_views",
    "is_main_process",
    "process_rank",
    "setup_distributed",
    "shard",
]

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Distributed:
    """The process group a run trains in: ``rank`` of ``world_size`` (``world_size == 1``: one
    process, no communication)."""

    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every process."""
        if not self.active:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(
        self, network: nn.Module, device: torch.device
    ) -> tuple[nn.Module, Callable[[], None]]:
        """``(model, finish)``: ``network`` in ``DistributedDataParallel`` (rank 0's weights
        broadcast to all; on GPUs its BatchNorm layers swapped for ``SyncBatchNorm`` sharing
        their parameters and statistics), and a function that puts the original layers back
        after training. One process: ``(network, a no-op)``. Train through ``model``;
        validate and save ``network``."""
        if not self.active:
            return network, _nothing
        from torch.nn.parallel import DistributedDataParallel

        if device.type != "cuda":
            if self.is_main and any(
                isinstance(m, nn.modules.batchnorm._BatchNorm) for m in network.modules()
            ):
                warnings.warn(
                    "distributed training on the CPU: BatchNorm layers normalise by each "
                    "process's share of the batch (PyTorch has no SyncBatchNorm on the CPU), so "
                    "the result differs from one process's",
                    stacklevel=4,
                )
            return DistributedDataParallel(network), _nothing
        swapped = _swap_batchnorm(network)
        model = DistributedDataParallel(network, device_ids=[device], output_device=device)

        def finish() -> None:
            for parent, name, original in swapped:
                setattr(parent, name, original)

        return model, finish

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


def _nothing() -> None:
    pass


def _swap_batchnorm(network: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every BatchNorm layer of ``network`` by a ``SyncBatchNorm`` holding the same
    parameter and buffer tensors (so training updates the originals); return ``(parent, name,
    original)`` for each, to put them back (PyTorch's SyncBatchNorm runs on GPUs only)."""
    swapped = []
    for parent in list(network.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, nn.SyncBatchNorm
            ):
                sync = nn.SyncBatchNorm(
                    child.num_features,
                    child.eps,
                    child.momentum,
                    child.affine,
                    child.track_running_stats,
                )
                if child.affine:
                    sync.weight, sync.bias = child.weight, child.bias
                if child.track_running_stats:
                    sync.running_mean = child.running_mean
                    sync.running_var = child.running_var
                    sync.num_batches_tracked = child.num_batches_tracked
                sync.train(child.training)
                setattr(parent, name, sync)
                swapped.append((parent, name, child))
    return swapped


def process_rank() -> int:
    """This process's rank: that of the initialised process group, else ``RANK`` from the
    environment (torchrun), else 0."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def is_main_process() -> bool:
    """True on rank 0 and outside distributed runs: the process that prints and writes files."""
    return process_rank() == 0


def _environment_world_size() -> int:
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(value)
    except ValueError:
        raise InvalidInputError(f"WORLD_SIZE must be an integer, got {value!r}") from None
    if size < 1:
        raise InvalidInputError(f"WORLD_SIZE must be >= 1, got {size}")
    return size


def setup_distributed(device: str) -> tuple[Distributed, str]:
    """The process group of this run and the device string to train on.

    An initialised default process group is used as it is. Otherwise, with ``WORLD_SIZE > 1`` in
    the environment (torchrun), one is initialised from the environment (``env://``): nccl when
    training on CUDA, gloo on the CPU; it lasts until the process ends. With ``WORLD_SIZE``
    unset or 1: one process. In a process group, ``device`` ``"auto"`` (with CUDA present) and
    ``"cuda"`` become ``"cuda:LOCAL_RANK"``, one GPU per process (without ``LOCAL_RANK``: the
    rank modulo the number of GPUs).

    Raises InvalidInputError when the environment is incomplete or the backend cannot hold the
    device's tensors (nccl on the CPU).
    """
    initialised = torch.distributed.is_available() and torch.distributed.is_initialized()
    if not initialised and _environment_world_size() == 1:
        return Distributed(), device
    if not torch.distributed.is_available():
        raise InvalidInputError("WORLD_SIZE > 1 but this torch has no torch.distributed")
    rank = torch.distributed.get_rank() if initialised else int(os.environ.get("RANK", "0"))
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    local_rank = int(os.environ.get("LOCAL_RANK", rank % max(gpus, 1)))
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        device = f"cuda:{local_rank}"
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.set_device(torch.device(device))
    if not initialised:
        missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
        if missing:
            raise InvalidInputError(
                f"WORLD_SIZE > 1 but {', '.join(missing)} not set: start the processes with "
                "torchrun, or initialise torch.distributed first"
            )
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend, init_method="env://")
        atexit.register(_destroy)
    backend = torch.distributed.get_backend()
    if backend == "nccl" and not device.startswith("cuda"):
        raise InvalidInputError(
            f"the process group uses nccl, which needs GPUs, but training is on {device!r}; "
            "use the gloo backend on the CPU"
        )
    group = Distributed(torch.distributed.get_rank(), torch.distributed.get_world_size())
    return group, device


def _destroy() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def shard(global_batch: torch.Tensor, group: Distributed) -> torch.Tensor:
    """This process's contiguous share of ``global_batch`` (``(b, ...)``): ``world_size`` parts
    in rank order, sizes ``ceil`` or ``floor`` of ``b / world_size`` (``torch.tensor_split``)."""
    if not group.active:
        return global_batch
    return torch.tensor_split(global_batch, group.world_size)[group.rank]


def shard_sizes(b: int, group: Distributed) -> list[int]:
    """The sizes of the ``world_size`` shares of a global batch of ``b`` (see :func:`shard`)."""
    base, extra = divmod(b, group.world_size)
    return [base + (1 if r < extra else 0) for r in range(group.world_size)]


def gather_views(
    rows: torch.Tensor, sizes: list[int], group: Distributed, views: int = 1
) -> torch.Tensor:
    """:func:`gather_rows` for a network that gives ``views`` outputs per image, view-major
    (``(views * sizes[rank], ...)``: all first views, then all second ones, ...): the global
    batch's outputs in the same layout, ``(views * sum(sizes), ...)``, as one process's network
    gives them for the whole batch."""
    if views == 1 or not group.active:
        return gather_rows(rows, sizes, group)
    if len(rows) != views * sizes[group.rank]:
        raise InvalidInputError(
            f"rank {group.rank} holds {len(rows)} rows, its share is {views} views of "
            f"{sizes[group.rank]} images"
        )
    n = sizes[group.rank]
    return torch.cat([gather_rows(rows[v * n : (v + 1) * n], sizes, group) for v in range(views)])


def _all_gather_rows(rows: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Every process's ``rows`` (process ``r`` holding ``sizes[r]`` of them), concatenated in
    rank order; padded to equal sizes for the collective."""
    padded = rows.new_zeros((max(sizes), *rows.shape[1:]))
    padded[: len(rows)] = rows
    parts = [torch.empty_like(padded) for _ in sizes]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


class _GatherRows(torch.autograd.Function):
    """:func:`_all_gather_rows` whose backward sums the global gradient over the processes and
    returns this process's rows of it."""

    @staticmethod
    def forward(ctx: Any, rows: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
        ctx.sizes, ctx.rank = sizes, rank
        return _all_gather_rows(rows, sizes)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad, op=torch.distributed.ReduceOp.SUM)
        begin = sum(ctx.sizes[: ctx.rank])
        return grad[begin : begin + ctx.sizes[ctx.rank]], None, None


def gather_rows(rows: torch.Tensor, sizes: list[int], group: Distributed) -> torch.Tensor:
    """The global batch ``(sum(sizes), ...)`` from each process's share ``rows``
    (``(sizes[rank], ...)``, see :func:`shard_sizes`), in rank order, on every process.
    Differentiable when ``rows`` requires grad: the backward all-reduces (sums) the gradient of
    the global batch and returns this process's rows of it (the module docstring says why the
    parameter gradient then equals one process's). One process: ``rows`` itself."""
    if not group.active:
        return rows
    if len(rows) != sizes[group.rank]:
        raise InvalidInputError(
            f"rank {group.rank} holds {len(rows)} rows, its share is {sizes[group.rank]}"
        )
    if rows.requires_grad:
        return _GatherRows.apply(rows, sizes, group.rank)
    return _all_gather_rows(rows, sizes)
