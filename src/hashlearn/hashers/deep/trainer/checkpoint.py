"""Checkpoints that resume a run bit for bit: their format, writing, reading and restoring.

With ``checkpoint_dir``, after every epoch the trainer writes ``checkpoint-epochNNNNN.safetensors``
(network, best network, weight average, optimizer and loss tensors, random generator states as
uint8 tensors) and then ``checkpoint.json`` (epoch, history, early-stopping state, configuration
fingerprint, SHA-256 of the tensor file), each atomically; the JSON file is the commit point, so
a crash between the two writes leaves the previous checkpoint valid. Nothing is pickled and
nothing is read with ``torch.load``. A loss's state is its ``state_dict()``: buffers, and ``get_extra_state()`` if it
defines one (saved as JSON). State kept in plain attributes is not checkpointed.

A checkpoint continues only the run it was written by: its fingerprint
(:func:`run_fingerprint`: seed, schedule, data sizes and label digests, network and loss types)
must match the new run's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hashlearn._io import atomic_write
from hashlearn._json import read_json_file
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.hashers.deep.trainer.config import TrainerConfig
from hashlearn.hashers.deep.trainer.data import BatchSource

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "CHECKPOINT_JSON",
    "CHECKPOINT_TENSORS",
    "RunParts",
    "RunState",
    "read_checkpoint",
    "restore_checkpoint",
    "run_fingerprint",
    "save_checkpoint",
    "tensor_digest",
]

CHECKPOINT_FORMAT = "hashlearn.checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
CHECKPOINT_JSON = "checkpoint.json"
MAX_CHECKPOINT_JSON_BYTES = 1 << 26  # 64 MiB: its history and settings take kilobytes
CHECKPOINT_TENSORS = "checkpoint-epoch{:05d}.safetensors"


@dataclass
class RunState:
    """What changes from epoch to epoch (besides weights and random generators)."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_map: float | None = None
    since_best: int = 0
    finished: bool = False
    stopped_early: bool = False
    best_network: dict[str, torch.Tensor] | None = None  # with validation data only
    # stochastic weight averaging: the mean of the network's state over the epochs from
    # swa_start(swa, epochs) to ``epoch`` (None before the first of them, or with swa off)
    average: dict[str, torch.Tensor] | None = None


@dataclass
class RunParts:
    """The objects of a run whose state a checkpoint holds, besides its :class:`RunState`."""

    network: nn.Module
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    generators: dict[str, torch.Generator]
    device: torch.device


def run_fingerprint(
    config: TrainerConfig,
    *,
    seed: int,
    padding: int,
    n_bits: int,
    train: BatchSource,
    validation: BatchSource | None,
    network: nn.Module,
    loss: nn.Module,
) -> dict[str, Any]:
    """What must match for a checkpoint to continue a run (JSON-able)."""
    return {
        "seed": seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "lr_schedule": config.lr_schedule,
        "lr_step_size": config.lr_step_size,
        "lr_gamma": config.lr_gamma,
        "augment": config.augment,
        "augment_padding": padding if config.augment else None,
        **({"swa": config.swa} if config.swa else {}),
        "n_train": len(train),
        "n_bits": n_bits,
        "train_labels": tensor_digest(train.labels),
        "n_validation": None if validation is None else len(validation),
        "validation_labels": None if validation is None else tensor_digest(validation.labels),
        "network": type(network).__name__,
        "loss": type(loss).__name__,
    }


def save_checkpoint(
    directory: Path,
    parts: RunParts,
    state: RunState,
    *,
    seed: int,
    fingerprint: dict[str, Any],
) -> None:
    """Write the tensor file, then the JSON file that commits it; drop older tensor files."""
    from safetensors.torch import save as save_safetensors

    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for key, value in parts.network.state_dict().items():
        tensors[f"network.{key}"] = value
    for key, value in (state.best_network or {}).items():
        tensors[f"best_network.{key}"] = value
    for key, value in (state.average or {}).items():
        tensors[f"average.{key}"] = value
    loss_extra: dict[str, Any] = {}
    for key, value in parts.loss.state_dict().items():
        if isinstance(value, torch.Tensor):
            tensors[f"loss.{key}"] = value
        else:  # get_extra_state()
            loss_extra[key] = value
    optimizer_extra: dict[str, dict[str, Any]] = {}
    for index, values in parts.optimizer.state_dict()["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                optimizer_extra.setdefault(str(index), {})[key] = value
    tensors["rng.global"] = torch.get_rng_state()
    if parts.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(parts.device)
    for name, generator in parts.generators.items():
        tensors[f"rng.{name}"] = generator.get_state()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    payload = save_safetensors(tensors)
    tensors_name = CHECKPOINT_TENSORS.format(state.epoch)
    with atomic_write(directory / tensors_name) as handle:
        handle.write(payload)
    document = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "epoch": state.epoch,
        "seed": seed,
        "fingerprint": fingerprint,
        "tensors_file": tensors_name,
        "tensors_sha256": hashlib.sha256(payload).hexdigest(),
        "history": state.history,
        "best_epoch": state.best_epoch,
        "best_val_map": state.best_map,
        "epochs_since_best": state.since_best,
        "finished": state.finished,
        "stopped_early": state.stopped_early,
        "optimizer_extra": optimizer_extra,
        "loss_extra": loss_extra,
        "grad_scaler": None if parts.scaler is None else parts.scaler.state_dict(),
    }
    try:
        text = json.dumps(document, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot checkpoint this run: a loss or optimizer state value is not JSON: {exc}"
        ) from None
    with atomic_write(directory / CHECKPOINT_JSON) as handle:
        handle.write(text.encode())
    for old in directory.glob("checkpoint-epoch*.safetensors"):
        if old.name != tensors_name:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def read_checkpoint(directory: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """The checkpoint in ``directory``, or None when there is none. Raises FileFormatError."""
    from safetensors.torch import load as load_safetensors

    path = directory / CHECKPOINT_JSON
    if not path.is_file():
        return None
    document = read_json_file(path, max_bytes=MAX_CHECKPOINT_JSON_BYTES, error=FileFormatError)
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise FileFormatError(f"{str(path)!r} is not a hashlearn checkpoint")
    if document.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise FileFormatError(
            f"{str(path)!r} has checkpoint format version {document.get('format_version')!r}; "
            f"this hashlearn reads version {CHECKPOINT_FORMAT_VERSION}"
        )
    name = document.get("tensors_file")
    if not isinstance(name, str) or Path(name).name != name:
        raise FileFormatError(f"{str(path)!r} names no valid tensor file: {name!r}")
    tensors_path = directory / name
    try:
        payload = tensors_path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(
            f"the checkpoint's tensor file {str(tensors_path)!r} is missing"
        ) from None
    if hashlib.sha256(payload).hexdigest() != document.get("tensors_sha256"):
        raise FileFormatError(
            f"{str(tensors_path)!r} is corrupted: it does not match its SHA-256 in {CHECKPOINT_JSON}"
        )
    try:
        tensors = load_safetensors(payload)
    except Exception as exc:  # safetensors raises its own error type for damaged data
        raise FileFormatError(f"{str(tensors_path)!r} is damaged: {exc}") from None
    return document, tensors


def restore_checkpoint(
    document: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    parts: RunParts,
    fingerprint: dict[str, Any],
) -> RunState:
    """Load a checkpoint read by :func:`read_checkpoint` into ``parts`` (weights, optimizer,
    loss, gradient scaler, random generators) and return its :class:`RunState`.

    Raises InvalidInputError when it is of another run (its fingerprint differs from
    ``fingerprint``) or does not fit the network, loss or optimizer.
    """
    saved = document["fingerprint"]
    keys = [*fingerprint, *(key for key in saved if key not in fingerprint)]
    differences = [
        f"{key}: checkpoint {saved.get(key)!r}, now {fingerprint.get(key)!r}"
        for key in keys
        if saved.get(key) != fingerprint.get(key)
    ]
    if differences:
        raise InvalidInputError(
            "the checkpoint in checkpoint_dir is of a different run; "
            + "; ".join(differences)
            + " (use another checkpoint_dir, or resume=False to start afresh)"
        )

    def group(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    optimizer_state: dict[int, dict[str, Any]] = {}
    for key, value in group("optimizer.").items():
        index, name = key.split(".", 1)
        optimizer_state.setdefault(int(index), {})[name] = value
    for index, values in document.get("optimizer_extra", {}).items():
        optimizer_state.setdefault(int(index), {}).update(values)
    try:
        parts.network.load_state_dict(group("network."))
        parts.loss.load_state_dict({**group("loss."), **document.get("loss_extra", {})})
        parts.optimizer.load_state_dict(
            {
                "state": optimizer_state,
                "param_groups": parts.optimizer.state_dict()["param_groups"],
            }
        )
    except (RuntimeError, KeyError, ValueError) as exc:
        raise InvalidInputError(
            f"the checkpoint does not fit this network, loss or optimizer: {exc}"
        ) from None
    if parts.scaler is not None and document.get("grad_scaler"):
        parts.scaler.load_state_dict(document["grad_scaler"])
    torch.set_rng_state(tensors["rng.global"])
    if parts.device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], parts.device)
    for name, generator in parts.generators.items():
        generator.set_state(tensors[f"rng.{name}"])
    best = group("best_network.")
    average = group("average.")
    return RunState(
        epoch=int(document["epoch"]),
        history=list(document["history"]),
        best_epoch=int(document["best_epoch"]),
        best_map=document["best_val_map"],
        since_best=int(document["epochs_since_best"]),
        finished=bool(document["finished"]),
        stopped_early=bool(document["stopped_early"]),
        best_network={k: v.to(parts.device) for k, v in best.items()} if best else None,
        average={k: v.to(parts.device) for k, v in average.items()} if average else None,
    )


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's bytes, dtype and shape (hex), on the CPU."""
    array = tensor.detach().cpu().contiguous().numpy()
    return hashlib.sha256(
        array.tobytes() + str(array.dtype).encode() + str(array.shape).encode()
    ).hexdigest()
