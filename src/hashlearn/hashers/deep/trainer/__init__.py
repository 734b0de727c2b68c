"""The training loop of every deep hasher: seeded mini-batches, Adam, a learning-rate schedule,
validation mAP with early stopping and best-epoch restore, checkpoints that resume bit for bit.

    trainer = Trainer(TrainerConfig(epochs=30, batch_size=128, random_state=0))
    result = trainer.fit(network, loss, ArrayDataset(X, y), validation=ArrayDataset(X_val, y_val))

One module per concern:

- :mod:`~hashlearn.hashers.deep.trainer.config`: :class:`TrainerConfig`, the checked settings of
  a run, the learning-rate schedules (:func:`scheduled_lr`) and weight averaging (:func:`swa_start`);
- :mod:`~hashlearn.hashers.deep.trainer.data`: the batch sources (:class:`BatchSource`,
  :class:`ArrayDataset`), the seeded batch order, augmentation and devices;
- :mod:`~hashlearn.hashers.deep.trainer.loop`: :class:`Trainer`, the losses' calling
  convention, reproducibility;
- :mod:`~hashlearn.hashers.deep.trainer.run`: one run's epochs of steps, validation and early
  stopping, the CSV log and checkpoints after every epoch;
- :mod:`~hashlearn.hashers.deep.trainer.validation`: the leave-one-out validation mAP
  (:func:`validation_map`);
- :mod:`~hashlearn.hashers.deep.trainer.early_stopping`: early stopping without given validation
  data, the stratified validation part carved from the training data (:func:`carve_validation`)
  and when ``early_stopping="auto"`` turns it on;
- :mod:`~hashlearn.hashers.deep.trainer.tensorboard_log`: TensorBoard event files per epoch
  (``log_dir``);
- :mod:`~hashlearn.hashers.deep.trainer.checkpoint`: the checkpoint format, its writing, reading
  and restoring;
- :mod:`~hashlearn.hashers.deep.trainer.distributed`: one model trained on several processes
  (``torchrun``, torch.distributed with gloo or nccl): the process group, each rank's share of
  the global batches, the differentiable gather of the outputs, rank 0's decisions
  (:func:`setup_distributed`, :func:`is_main_process`).
"""

from hashlearn.hashers.deep.trainer.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    CHECKPOINT_JSON,
)
from hashlearn.hashers.deep.trainer.config import (
    LR_SCHEDULES,
    TrainerConfig,
    scheduled_lr,
    swa_start,
)
from hashlearn.hashers.deep.trainer.data import (
    ArrayDataset,
    BatchSource,
    augment_batch,
    resolve_device,
    standardize,
)
from hashlearn.hashers.deep.trainer.distributed import (
    Distributed,
    is_main_process,
    setup_distributed,
)
from hashlearn.hashers.deep.trainer.early_stopping import (
    DEFAULT_PATIENCE,
    EARLY_STOPPING_MIN_SAMPLES,
    carve_validation,
)
from hashlearn.hashers.deep.trainer.loop import Trainer, TrainResult
from hashlearn.hashers.deep.trainer.run import LOG_COLUMNS
from hashlearn.hashers.deep.trainer.validation import validation_map

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "CHECKPOINT_JSON",
    "DEFAULT_PATIENCE",
    "EARLY_STOPPING_MIN_SAMPLES",
    "LOG_COLUMNS",
    "LR_SCHEDULES",
    "ArrayDataset",
    "BatchSource",
    "Distributed",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "augment_batch",
    "carve_validation",
    "is_main_process",
    "resolve_device",
    "scheduled_lr",
    "setup_distributed",
    "standardize",
    "swa_start",
    "validation_map",
]
