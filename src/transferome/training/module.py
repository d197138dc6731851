"""The one LightningModule that wraps every model's plain ``nn.Module``.

The wrapped module implements ``loss(batch) -> dict[str, Tensor]`` with a ``"loss"`` entry
(the total to minimise) and any named components. This class builds the data loaders,
the optimiser and learning-rate schedule, accumulates the per-epoch losses on the device
(one host synchronisation per epoch), seeds the module's own randomness per epoch, keeps
the best weights and writes checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any, cast

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from transferome.training.checkpoint import Checkpoint, write_checkpoint
from transferome.training.config import LossError, TrainingConfig
from transferome.training.data import IndexBatchSampler, supports_batched_indexing

__all__ = ["EngineModule", "SamplerFactory"]

SamplerFactory = Callable[..., Iterable[Any]]


def _batch_len(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, Mapping):
        for value in batch.values():
            return _batch_len(value)
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_len(batch[0])
    return 1


def epoch_seed(random_state: int, epoch: int, rank: int) -> int:
    """Return the seed of the module's own randomness in one epoch of one process."""
    return int(np.random.SeedSequence([random_state, epoch, rank]).generate_state(1)[0])


class EngineModule(pl.LightningModule):
    """Train ``module`` on ``train`` (scoring ``val``) under ``config``; see :func:`fit_module`."""

    def __init__(
        self,
        module: torch.nn.Module,
        config: TrainingConfig,
        train: torch.utils.data.Dataset,
        val: torch.utils.data.Dataset | None,
        *,
        collate_fn: Callable[[Any], Any] | None = None,
        sampler_factory: SamplerFactory | None = None,
        checkpoint_dir: Path | None = None,
        resume: Checkpoint | None = None,
    ) -> None:
        super().__init__()
        self.module = module
        self.config = config
        self._train, self._val = train, val
        self._collate_fn, self._sampler_factory = collate_fn, sampler_factory
        self._checkpoint_dir = checkpoint_dir
        self._resume = resume
        progress = resume.progress if resume is not None else {}
        self.first_epoch = int(progress.get("epoch", -1)) + 1
        self.best_epoch = int(progress.get("best_epoch", -1))
        self.best_val_loss = float(progress.get("best_val_loss", float("inf")))
        self.wait = int(progress.get("wait", 0))
        self.stopped_early = False
        self.records: list[dict[str, Any]] = (
            resume.history.to_dict(orient="records") if resume is not None else []
        )
        self.best_state: dict[str, torch.Tensor] | None = None
        self.scheduler: Any = None
        self._sums: dict[str, dict[str, torch.Tensor]] = {}
        self._counts: dict[str, int] = {}
        self._started = 0.0
        self._samplers: list[_EpochBatches] = []

    # ----------------------------------------------------------------- data
    def _loader(self, dataset: torch.utils.data.Dataset, *, train: bool) -> Any:
        trainer = self.trainer
        world, rank = trainer.world_size, trainer.global_rank
        if self._sampler_factory is not None:
            batches = self._sampler_factory(
                dataset,
                batch_size=self.config.batch_size,
                shuffle=train,
                seed=self.config.random_state,
                num_replicas=world,
                rank=rank,
            )
        else:
            batches = IndexBatchSampler(
                len(cast(Sized, dataset)),
                self.config.batch_size,
                shuffle=train,
                seed=self.config.random_state,
                num_replicas=world,
                rank=rank,
                chunk_size=getattr(dataset, "chunk_size", None),
            )
        if train:
            batches = _EpochBatches(batches, self.first_epoch)
            self._samplers.append(batches)
        # The loader draws its base seed from its own generator, never from the global one
        # the module's dropout and noise use.
        options: dict[str, Any] = {
            "generator": torch.Generator().manual_seed(self.config.random_state),
            "pin_memory": torch.cuda.is_available() and self.config.accelerator != "cpu",
        }
        if supports_batched_indexing(dataset):
            return torch.utils.data.DataLoader(
                dataset,
                sampler=batches,
                batch_size=None,
                collate_fn=self._collate_fn or _identity,
                **options,
            )
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, collate_fn=self._collate_fn, **options
        )

    def train_dataloader(self) -> Any:
        """Return the loader of the training batches (Lightning hook)."""
        return self._loader(self._train, train=True)

    def val_dataloader(self) -> Any:
        """Return the loader of the validation batches, none without them (Lightning hook)."""
        if self._val is None:
            return []
        return self._loader(self._val, train=False)

    # ------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        """Build the optimiser: the module's ``configure_optimizer``, else Adam (Lightning hook).

        The scheduler, if any, is kept and stepped once per epoch by this class.
        """
        custom = getattr(self.module, "configure_optimizer", None)
        scheduler = None
        if callable(custom):
            result = custom(self.config)
            optimizer, scheduler = result if isinstance(result, tuple) else (result, None)
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise LossError(
                    f"{type(self.module).__name__}.configure_optimizer returned "
                    f"{type(optimizer).__name__}; expected an optimizer or (optimizer, scheduler)"
                )
        else:
            optimizer = torch.optim.Adam(
                self.module.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
            )
            if self.config.lr_step_size is not None:
                scheduler = torch.optim.lr_scheduler.StepLR(
                    optimizer, step_size=self.config.lr_step_size, gamma=self.config.lr_gamma
                )
        self.scheduler = scheduler  # stepped once per epoch by this class, not by Lightning
        return optimizer

    def _optimizer(self) -> torch.optim.Optimizer:
        optimizer = self.optimizers(use_pl_optimizer=False)
        assert isinstance(optimizer, torch.optim.Optimizer)
        return optimizer

    def on_fit_start(self) -> None:
        """Restore the optimiser and scheduler states of a resumed run (Lightning hook)."""
        if self._resume is not None:
            if self._resume.optimizer_state is not None:
                self._optimizer().load_state_dict(self._resume.optimizer_state)
            if self.scheduler is not None and self._resume.scheduler_state is not None:
                self.scheduler.load_state_dict(self._resume.scheduler_state)

    # ---------------------------------------------------------------- steps
    def _losses(self, batch: Any, stage: str) -> dict[str, torch.Tensor]:
        losses = cast(Any, self.module).loss(batch)
        if not isinstance(losses, Mapping) or "loss" not in losses:
            raise LossError(
                f"{type(self.module).__name__}.loss returned {type(losses).__name__}; "
                "expected a dict of scalar tensors with a 'loss' entry"
            )
        n = _batch_len(batch)
        sums = self._sums.setdefault(stage, {})
        for name, value in losses.items():
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise LossError(f"loss component {name!r} is not a scalar tensor")
            term = value.detach().float().reshape(()) * n
            sums[name] = sums[name] + term if name in sums else term
        self._counts[stage] = self._counts.get(stage, 0) + n
        return dict(losses)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Return the loss of one training batch (Lightning hook)."""
        loss = self._losses(batch, "train")["loss"]
        if self.config.progress:
            self.log("loss", loss.detach(), prog_bar=True, batch_size=_batch_len(batch))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Add the losses of one validation batch to the epoch's sums (Lightning hook)."""
        self._losses(batch, "val")

    # --------------------------------------------------------------- epochs
    @property
    def epoch(self) -> int:
        """Index of the current epoch over the whole run (resumed runs continue counting)."""
        return self.first_epoch + self.current_epoch

    def on_train_epoch_start(self) -> None:
        """Reset the epoch's sums and seed the epoch's randomness (Lightning hook)."""
        self._started = time.perf_counter()
        self._sums, self._counts = {}, {}
        for sampler in self._samplers:
            sampler.epoch = self.epoch
        torch.manual_seed(epoch_seed(self.config.random_state, self.epoch, self.global_rank))

    def _epoch_means(self, stage: str) -> dict[str, float]:
        sums = self._sums.get(stage, {})
        names = sorted(sums)
        values = [sums[name] for name in names]
        count = torch.tensor(float(self._counts.get(stage, 0)), device=self.device)
        stacked = torch.stack([*[v.to(self.device) for v in values], count])
        stacked = self.trainer.strategy.reduce(stacked, reduce_op="sum")
        totals = stacked.tolist()  # the one host synchronisation of the epoch
        total_count = totals[-1]
        if total_count == 0:
            return {}
        return {name: value / total_count for name, value in zip(names, totals[:-1], strict=True)}

    def on_train_epoch_end(self) -> None:
        """Record the epoch, keep the best weights, stop early, checkpoint (Lightning hook)."""
        train = self._epoch_means("train")
        val = self._epoch_means("val") if self._val is not None else {}
        optimizer = self._optimizer()
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": train.get("loss", float("nan")),
            "val_loss": val.get("loss", float("nan")),
        }
        record.update({f"train_{k}": v for k, v in train.items() if k != "loss"})
        record.update({f"val_{k}": v for k, v in val.items() if k != "loss"})
        record["lr"] = float(optimizer.param_groups[0]["lr"])
        if self.scheduler is not None:
            self.scheduler.step()
        improved = self._val is None or record["val_loss"] < self.best_val_loss
        if improved:
            self.best_epoch = self.epoch
            if self._val is not None:
                self.best_val_loss = record["val_loss"]
                self.best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()
                }
            self.wait = 0
        else:
            self.wait += 1
        patience = self.config.early_stopping
        if self._val is not None and patience is not None and self.wait >= patience:
            self.stopped_early = True
            self.trainer.should_stop = True
        record["seconds"] = time.perf_counter() - self._started
        self.records.append(record)
        if self._checkpoint_dir is not None and self.trainer.is_global_zero:
            self._write_checkpoints(optimizer, improved=improved)

    def _write_checkpoints(self, optimizer: torch.optim.Optimizer, *, improved: bool) -> None:
        assert self._checkpoint_dir is not None
        progress = {
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "wait": self.wait,
            "stopped_early": self.stopped_early,
        }
        for name in ("last", "best") if improved else ("last",):
            write_checkpoint(
                self._checkpoint_dir / name,
                module=self.module,
                optimizer=optimizer,
                scheduler=self.scheduler,
                training_config=self.config.to_dict(),
                progress=progress,
                history=self.history(),
            )

    def history(self) -> pd.DataFrame:
        """One row per epoch: epoch, train/val losses and components, lr, seconds."""
        frame = pd.DataFrame.from_records(self.records)
        if frame.empty:
            return pd.DataFrame(columns=["epoch", "train_loss", "val_loss", "lr", "seconds"])
        first = ["epoch", "train_loss", "val_loss"]
        last = ["lr", "seconds"]
        middle = sorted(c for c in frame.columns if c not in first + last)
        return frame[first + middle + last].astype({"epoch": "int64"})


class _EpochBatches:
    """Hand the run's absolute epoch to a batch sampler before every pass.

    It deliberately has no ``set_epoch``: Lightning would call it with the epoch counted from
    the start of this ``fit`` call, which is wrong for a resumed run. Lightning may create
    the first iterator before ``on_train_epoch_start``, so ``epoch`` starts at the first
    epoch of the run.
    """

    def __init__(self, batches: Iterable[Any], epoch: int) -> None:
        self.batches, self.epoch = batches, epoch

    def __iter__(self) -> Iterator[Any]:
        set_epoch = getattr(self.batches, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch)
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]


def _identity(batch: Any) -> Any:
    return batch
