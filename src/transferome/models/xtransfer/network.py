"""The XTransferCDR network: basal encoder E_s, perturbation encoder E_p, shared decoder D.

A profile ``X`` is encoded twice: ``S = E_s(X)`` (the basal state of its context) and
``P = E_p(X)`` (the perturbation it received); the decoder reads their sum, ``D(S + P)``.
Training sees pairs ``(X_a, X_b)`` from one context under two perturbations, each with a
control of that context, and minimises (every term weighted, a zero weight switches it off):

- ``L_sim``: ``KL(softmax S_b || softmax S_a)``, basal states of a pair agree;
- ``L_orth``: batch mean of ``(S_i . P_i)^2`` for each member, basal and perturbation apart;
- ``L_reco(1)``: ``D(S_a) -> control_a`` and ``D(S_b) -> control_b``;
- ``L_reco(2)``: ``D(S_a + P_a) -> X_a`` and ``D(S_b + P_b) -> X_b``;
- ``L_cross``: ``D(S_b + P_a) -> X_a`` and ``D(S_a + P_b) -> X_b``.

Defaults follow the paper (feed-forward 1024-512-256 to a 128 bottleneck, batch norm, dropout
0.2, ReLU); the authors' code variants are options: residual blocks, Gaussian noise on the
inputs and on the latents during training (sigma 0.1 there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from itertools import pairwise
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LOSS_NAMES",
    "XTransferConfig",
    "XTransferModule",
    "cross_loss",
    "orth_loss",
    "pair_mse",
    "reco_control_loss",
    "reco_loss",
    "sim_loss",
]

LOSS_NAMES = ("sim", "orth", "reco_control", "reco", "cross")


@dataclass(frozen=True)
class XTransferConfig:
    """Architecture and loss weights of :class:`XTransferModule`.

    Parameters
    ----------
    n_genes
        Input and output width.
    hidden
        Widths of the encoder's hidden layers (the decoder mirrors them).
    latent_dim
        Bottleneck width of ``S`` and ``P``.
    dropout, batch_norm
        Regularisation after each hidden layer.
    n_residual
        Residual blocks inserted at the second hidden width (the authors' code uses 3).
    input_noise, latent_noise
        Standard deviation of Gaussian noise added in training to the inputs and to the
        latents fed to the decoder (the authors' code uses 0.1 for both).
    latent_relu
        ReLU on the latents (as in the authors' code).
    w_sim, w_orth, w_reco_control, w_reco, w_cross
        Loss weights; 0 switches a term off (the paper's ablation).
    """

    n_genes: int
    hidden: tuple[int, ...] = (1024, 512, 256)
    latent_dim: int = 128
    dropout: float = 0.2
    batch_norm: bool = True
    n_residual: int = 0
    input_noise: float = 0.0
    latent_noise: float = 0.0
    latent_relu: bool = True
    w_sim: float = 1.0
    w_orth: float = 1.0
    w_reco_control: float = 1.0
    w_reco: float = 1.0
    w_cross: float = 1.0

    def __post_init__(self) -> None:
        if self.n_genes < 1 or self.latent_dim < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(
                f"n_genes, latent_dim and hidden widths must be positive, got {self.n_genes}, "
                f"{self.latent_dim}, {self.hidden}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        negative = [
            f.name for f in fields(self) if f.name.startswith("w_") and getattr(self, f.name) < 0
        ]
        if negative or self.input_noise < 0 or self.latent_noise < 0 or self.n_residual < 0:
            raise ValueError(
                f"loss weights, noise levels and n_residual must be >= 0 (negative: {negative})"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> XTransferConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "hidden": tuple(data["hidden"])})


# ----------------------------------------------------------------------------- losses
def sim_loss(s_a: Tensor, s_b: Tensor) -> Tensor:
    """``KL(softmax(s_b) || softmax(s_a))`` averaged over the batch."""
    return F.kl_div(F.log_softmax(s_a, dim=1), F.softmax(s_b, dim=1), reduction="batchmean")


def orth_loss(s: Tensor, p: Tensor) -> Tensor:
    """Batch mean of the squared dot product of each row of ``s`` with its row of ``p``."""
    return torch.mean(torch.sum(s * p, dim=1) ** 2)


def pair_mse(pred_a: Tensor, x_a: Tensor, pred_b: Tensor, x_b: Tensor) -> Tensor:
    """``MSE(pred_a, x_a) + MSE(pred_b, x_b)``, each averaged over all entries."""
    return F.mse_loss(pred_a, x_a) + F.mse_loss(pred_b, x_b)


def reco_control_loss(d_s_a: Tensor, control_a: Tensor, d_s_b: Tensor, control_b: Tensor) -> Tensor:
    """``L_reco(1)``: decoded basal states against the paired controls."""
    return pair_mse(d_s_a, control_a, d_s_b, control_b)


def reco_loss(d_aa: Tensor, x_a: Tensor, d_bb: Tensor, x_b: Tensor) -> Tensor:
    """``L_reco(2)``: ``D(S_a + P_a)`` against ``X_a`` and ``D(S_b + P_b)`` against ``X_b``."""
    return pair_mse(d_aa, x_a, d_bb, x_b)


def cross_loss(d_ba: Tensor, x_a: Tensor, d_ab: Tensor, x_b: Tensor) -> Tensor:
    """``L_cross``: ``D(S_b + P_a)`` against ``X_a`` and ``D(S_a + P_b)`` against ``X_b``."""
    return pair_mse(d_ba, x_a, d_ab, x_b)


# ----------------------------------------------------------------------------- network
class _Residual(nn.Module):
    def __init__(self, width: int, config: XTransferConfig) -> None:
        super().__init__()
        self.block = nn.Sequential(*_layer(width, width, config))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def _layer(n_in: int, n_out: int, config: XTransferConfig) -> list[nn.Module]:
    return [
        nn.Linear(n_in, n_out),
        nn.BatchNorm1d(n_out) if config.batch_norm else nn.Identity(),
        nn.Dropout(config.dropout),
        nn.ReLU(),
    ]


def _mlp(widths: list[int], config: XTransferConfig, *, last: nn.Module) -> nn.Sequential:
    """Hidden layers over ``widths[:-1]``, residual blocks at the second width, a last linear."""
    modules: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(pairwise(widths[:-1])):
        modules += _layer(n_in, n_out, config)
        if i == min(1, len(widths) - 3):
            modules += [_Residual(n_out, config) for _ in range(config.n_residual)]
    modules += [nn.Linear(widths[-2], widths[-1]), last]
    return nn.Sequential(*modules)


class XTransferModule(nn.Module):
    """E_s, E_p and D as plain feed-forward networks; see the module docstring."""

    def __init__(self, config: XTransferConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.n_genes, *config.hidden, config.latent_dim]

        def latent_act() -> nn.Module:
            return nn.ReLU() if config.latent_relu else nn.Identity()

        self.encoder_s = _mlp(widths, config, last=latent_act())
        self.encoder_p = _mlp(widths, config, last=latent_act())
        self.decoder = _mlp(widths[::-1], config, last=nn.Identity())

    @torch.no_grad()
    def set_output_offset(self, gene_means: Tensor) -> None:
        """Start the decoder at the data's gene means (bias of its last layer).

        The decoder then learns deviations from the mean profile instead of the whole
        profile from zero, which shortens training considerably.
        """
        last = cast(nn.Linear, self.decoder[-2])
        if gene_means.shape != last.bias.shape:
            raise ValueError(
                f"gene_means has shape {tuple(gene_means.shape)}, expected {tuple(last.bias.shape)}"
            )
        last.bias.copy_(gene_means)

    def _noise(self, x: Tensor, sigma: float) -> Tensor:
        if self.training and sigma > 0:
            return x + sigma * torch.randn_like(x)
        return x

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Basal state ``S`` and perturbation latent ``P`` of each row of ``x``."""
        x = self._noise(x, self.config.input_noise)
        return self.encoder_s(x), self.encoder_p(x)

    def decode(self, z: Tensor) -> Tensor:
        """Expression profiles from latents (noise on ``z`` in training)."""
        return self.decoder(self._noise(z, self.config.latent_noise))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Latents and every decoded profile of a batch of pairs.

        Both members of the pairs go through each encoder in one pass, and every latent sum
        through the decoder in one pass, so that batch normalisation sees a batch mixing
        both perturbation groups (the members of one side all come from one half of the
        perturbations; normalising them apart would subtract their shared effect).
        """
        n = batch["x_a"].shape[0]
        s, p = self.encode(torch.cat([batch["x_a"], batch["x_b"]]))
        s_a, s_b, p_a, p_b = s[:n], s[n:], p[:n], p[n:]
        out = {"s_a": s_a, "p_a": p_a, "s_b": s_b, "p_b": p_b}
        latents = {"d_aa": s_a + p_a, "d_bb": s_b + p_b}
        if self.config.w_cross > 0:
            latents.update(d_ba=s_b + p_a, d_ab=s_a + p_b)
        if self.config.w_reco_control > 0:
            latents.update(d_s_a=s_a, d_s_b=s_b)
        decoded = self.decode(torch.cat(list(latents.values())))
        out.update(zip(latents, decoded.split(n), strict=True))
        return out

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Total weighted loss (``"loss"``) and every component, switched-off ones as 0."""
        cfg = self.config
        out = self(batch)
        x_a, x_b = batch["x_a"], batch["x_b"]
        zero = x_a.new_zeros(())
        parts = {
            "sim": sim_loss(out["s_a"], out["s_b"]) if cfg.w_sim > 0 else zero,
            "orth": (
                orth_loss(out["s_a"], out["p_a"]) + orth_loss(out["s_b"], out["p_b"])
                if cfg.w_orth > 0
                else zero
            ),
            "reco_control": (
                reco_control_loss(
                    out["d_s_a"], batch["control_a"], out["d_s_b"], batch["control_b"]
                )
                if cfg.w_reco_control > 0
                else zero
            ),
            "reco": reco_loss(out["d_aa"], x_a, out["d_bb"], x_b),
            "cross": cross_loss(out["d_ba"], x_a, out["d_ab"], x_b) if cfg.w_cross > 0 else zero,
        }
        total = sum(getattr(cfg, f"w_{name}") * value for name, value in parts.items())
        return {"loss": total, **parts}

    @torch.no_grad()
    def predict_from_latents(self, s: Tensor, p: Tensor) -> Tensor:
        """``D(S + P)`` in evaluation mode (no dropout, no noise)."""
        was_training = self.training
        self.eval()
        try:
            return self.decoder(s + p)
        finally:
            self.train(was_training)
