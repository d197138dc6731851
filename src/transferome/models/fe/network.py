"""The Factorized Embeddings network (Trofimov et al. 2020) as a plain ``nn.Module``.

One embedding table per descriptor: samples and genes always, plus any number of extra
sample-side factors (tissue, species, drug, donor...) and gene-side factors. The embeddings of
one value's descriptors are concatenated and fed to an MLP (tanh) that predicts that value.

The first layer is split by side: ``W [z_s; z_t...; z_g; z_v...] + b =
(W_s [z_s; z_t...] + b) + W_g [z_g; z_v...]``. A batch is a *block*: a set of samples times a
set of genes. The sample side of the first layer is computed once per sample row and the gene
side once per gene column, then broadcast-added, so a block of ``S x G`` values costs
``S + G`` first-layer products plus ``S * G`` evaluations of the rest of the MLP. The
``(sample, gene)`` index table of the reference design is never materialised.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

__all__ = [
    "FEBlocks",
    "FEConfig",
    "FEModule",
    "LazyAdam",
    "embed_samples",
    "masked_mse",
    "pca_embeddings",
]

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass(frozen=True)
class FEConfig:
    """Shape of a Factorized Embeddings network.

    Parameters
    ----------
    n_samples, n_genes
        Rows of the sample and gene embedding tables.
    obs_factor_levels
        Number of levels of each extra sample-side factor (one table each).
    var_factor_levels
        Number of levels of each extra gene-side factor.
    embedding_dim
        Size of every embedding (50 in the paper).
    hidden
        Hidden layer sizes (250, 150, 100, 50, 10 in the paper).
    activation
        ``"tanh"`` (the paper), ``"relu"`` or ``"gelu"``.
    """

    n_samples: int
    n_genes: int
    obs_factor_levels: tuple[int, ...] = ()
    var_factor_levels: tuple[int, ...] = ()
    embedding_dim: int = 50
    hidden: tuple[int, ...] = (250, 150, 100, 50, 10)
    activation: str = "tanh"

    def __post_init__(self) -> None:
        if self.n_samples < 1 or self.n_genes < 1:
            raise ValueError(
                f"n_samples and n_genes must be >= 1, got {self.n_samples}, {self.n_genes}"
            )
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty tuple of sizes >= 1, got {self.hidden}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        if any(n < 1 for n in (*self.obs_factor_levels, *self.var_factor_levels)):
            raise ValueError("every factor needs at least one level")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (inverse: ``FEConfig.from_dict``)."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FEConfig:
        """Rebuild a config saved by :meth:`to_dict`."""
        values = dict(data)
        for name in ("obs_factor_levels", "var_factor_levels", "hidden"):
            values[name] = tuple(int(v) for v in values.get(name, ()))
        return cls(**values)

    def flops_per_value(self) -> int:
        """Multiply-adds of one forward value beyond the first layer (the per-value cost)."""
        sizes = [*self.hidden, 1]
        return int(sum(a * b for a, b in itertools.pairwise(sizes)))


class FEModule(nn.Module):
    """Embedding tables and the MLP; ``loss(batch)`` follows the training-engine contract.

    Parameters
    ----------
    config
        Shape of the network.
    embedding_lr
        Learning rate of the sample and gene tables (default: the training ``lr``). Each row
        of these tables gets one update per epoch (one per block that holds it), against one
        per block for the network, so they can take a larger rate.
    """

    var_factor_codes: torch.Tensor  # (n_genes, n_var_factors) codes, a buffer

    def __init__(self, config: FEConfig, *, embedding_lr: float | None = None) -> None:
        super().__init__()
        self.config = config
        self.embedding_lr = embedding_lr
        d = config.embedding_dim
        # Sparse gradients: a block touches few rows, and LazyAdam updates only those.
        self.sample_embedding = nn.Embedding(config.n_samples, d, sparse=True)
        self.gene_embedding = nn.Embedding(config.n_genes, d, sparse=True)
        self.obs_factor_embeddings = nn.ModuleList(
            nn.Embedding(n, d) for n in config.obs_factor_levels
        )
        self.var_factor_embeddings = nn.ModuleList(
            nn.Embedding(n, d) for n in config.var_factor_levels
        )
        hidden = [int(h) for h in config.hidden]
        n_sample_side = 1 + len(config.obs_factor_levels)
        n_gene_side = 1 + len(config.var_factor_levels)
        # First layer split by side; the bias lives on the sample side only.
        self.first_sample = nn.Linear(d * n_sample_side, hidden[0])
        self.first_gene = nn.Linear(d * n_gene_side, hidden[0], bias=False)
        self.activation = _ACTIVATIONS[config.activation]()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(hidden))
        self.last = nn.Linear(hidden[-1], 1)
        # Codes of the gene-side factors of every gene (fixed data, saved with the weights).
        self.register_buffer(
            "var_factor_codes",
            torch.zeros(config.n_genes, len(config.var_factor_levels), dtype=torch.long),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings ~ N(0, 1) as ``nn.Embedding``; the first layer as one joint Linear."""
        fan_in = self.first_sample.in_features + self.first_gene.in_features
        bound = 1.0 / math.sqrt(fan_in)
        for weight in (self.first_sample.weight, self.first_gene.weight):
            nn.init.uniform_(weight, -bound, bound)
        nn.init.uniform_(self.first_sample.bias, -bound, bound)

    # -- the two sides of the first layer -------------------------------------------------
    def sample_side(
        self, sample_z: torch.Tensor, obs_factors: torch.Tensor | None = None
    ) -> torch.Tensor:
        """First-layer contribution (bias included) of sample embeddings ``(S, d)``."""
        parts = [sample_z]
        if len(self.obs_factor_embeddings) and obs_factors is None:
            raise ValueError("the network has sample-side factors: pass their codes")
        for k, table in enumerate(self.obs_factor_embeddings):
            parts.append(table(obs_factors[:, k]))  # type: ignore[index]
        return self.first_sample(torch.cat(parts, dim=1))

    def gene_side(self, gene: torch.Tensor) -> torch.Tensor:
        """First-layer contribution of gene indices ``(G,)`` (gene-side factors included)."""
        parts = [self.gene_embedding(gene)]
        codes = self.var_factor_codes[gene]
        for k, table in enumerate(self.var_factor_embeddings):
            parts.append(table(codes[:, k]))
        return self.first_gene(torch.cat(parts, dim=1))

    def factor_weight(self, side: str, k: int) -> torch.Tensor:
        """Return the ``(levels, dim)`` table of the ``k``-th ``"obs"`` or ``"var"`` factor."""
        tables = self.obs_factor_embeddings if side == "obs" else self.var_factor_embeddings
        return cast(nn.Embedding, tables[k]).weight

    def head(self, sample_h: torch.Tensor, gene_h: torch.Tensor) -> torch.Tensor:
        """Predictions ``(S, G)`` from first-layer sides ``(S, H)`` and ``(G, H)``."""
        n_s, n_g = sample_h.shape[0], gene_h.shape[0]
        h = self.activation(sample_h[:, None, :] + gene_h[None, :, :]).reshape(n_s * n_g, -1)
        for layer in self.layers:
            h = self.activation(layer(h))
        return self.last(h).reshape(n_s, n_g)

    def forward(
        self,
        sample: torch.Tensor,
        gene: torch.Tensor,
        obs_factors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted values of the block ``sample x gene``, shape ``(S, G)``."""
        sample_h = self.sample_side(self.sample_embedding(sample), obs_factors)
        return self.head(sample_h, self.gene_side(gene))

    def configure_optimizer(self, config: Any) -> Any:
        """:class:`LazyAdam` (rows of the sample and gene tables updated only when used).

        The sample and gene tables form their own parameter group with ``embedding_lr``.
        """
        tables = [self.sample_embedding.weight, self.gene_embedding.weight]
        table_ids = {id(p) for p in tables}
        rest = [p for p in self.parameters() if id(p) not in table_ids]
        table_lr = config.lr if self.embedding_lr is None else float(self.embedding_lr)
        optimizer = LazyAdam(
            [{"params": rest}, {"params": tables, "lr": table_lr}],
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
        if config.lr_step_size is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.lr_step_size, gamma=config.lr_gamma
        )
        return optimizer, scheduler

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Masked mean squared error over the observed entries of a block."""
        pred = self.forward(batch["sample"], batch["gene"], batch.get("obs_factors"))
        return {"loss": masked_mse(pred, batch["x"], batch.get("mask"))}


class LazyAdam(torch.optim.Optimizer):
    """Adam with L2 weight decay; sparse gradients update only the rows they touch.

    Dense parameters follow :class:`torch.optim.Adam` exactly. For a parameter with a sparse
    gradient (an embedding table with ``sparse=True``), the moments, the weight decay and the
    step are applied to the rows present in the gradient only, so a step costs in proportion
    to the block, not to the table (the "lazy" Adam of large embedding models). The bias
    correction uses the parameter's step count.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        )

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """Take one optimisation step; ``closure`` re-evaluates the loss, which is returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                step = float(state["step"])
                scale = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if p.grad.is_sparse:
                    grad = p.grad.coalesce()
                    rows = grad.indices()[0]
                    g = grad.values()
                    if group["weight_decay"]:
                        g = g + group["weight_decay"] * p[rows]
                    m_rows = m[rows].mul_(beta1).add_(g, alpha=1 - beta1)
                    v_rows = v[rows].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    m[rows], v[rows] = m_rows, v_rows
                    denom = v_rows.sqrt().add_(group["eps"] * math.sqrt(1 - beta2**step))
                    p.index_add_(0, rows, m_rows.div_(denom).mul_(-scale))
                else:
                    g = p.grad
                    if group["weight_decay"]:
                        g = g.add(p, alpha=group["weight_decay"])
                    m.mul_(beta1).add_(g, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denom = v.sqrt().add_(group["eps"] * math.sqrt(1 - beta2**step))
                    p.addcdiv_(m, denom, value=-scale)
        return loss


def pca_embeddings(
    values: np.ndarray, mask: np.ndarray | None, dim: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sample and gene embeddings from a PCA of the data (a warm start for training).

    Unobserved entries are filled with their gene's observed mean; the centred matrix is
    factorised by SVD, ``X - mean = U S V^T``, and the sample embeddings are ``U sqrt(S)``,
    the gene embeddings ``V sqrt(S)``, each table rescaled to unit root mean square (the
    scale of the default ``N(0, 1)`` start). Dimensions beyond the rank of the data are
    drawn from ``N(0, 0.1^2)``.

    Parameters
    ----------
    values
        ``(n_samples, n_genes)`` matrix.
    mask
        Observed entries, or ``None`` (all).
    dim
        Embedding size.
    seed
        Seed of the filler dimensions.

    Returns
    -------
    tuple of numpy.ndarray
        ``(n_samples, dim)`` and ``(n_genes, dim)`` float32 arrays.
    """
    x = np.asarray(values, dtype=np.float64)
    if mask is None:
        means = x.mean(axis=0)
    else:
        observed = np.asarray(mask, dtype=bool)
        counts = observed.sum(axis=0)
        means = np.where(observed, x, 0.0).sum(axis=0) / np.maximum(counts, 1)
        x = np.where(observed, x, means[None, :])
    u, s, vt = np.linalg.svd(x - means[None, :], full_matrices=False)
    k = min(int(dim), int(np.sum(s > s[0] * 1e-6)) if s.size and s[0] > 0 else 0)
    rng = np.random.default_rng(seed)
    tables = []
    for left in (u, vt.T):
        table = rng.normal(0.0, 0.1, (left.shape[0], int(dim)))
        if k:
            part = left[:, :k] * np.sqrt(s[:k])[None, :]
            table[:, :k] = part / max(float(np.sqrt(np.mean(part**2))), 1e-12)
        tables.append(table.astype(np.float32))
    return tables[0], tables[1]


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` is true (all when ``None``)."""
    sq = (pred.float() - target.float()) ** 2
    if mask is None:
        return sq.mean()
    weights = mask.to(sq.dtype)
    return (sq * weights).sum() / weights.sum().clamp_min(1.0)


class FEBlocks(torch.utils.data.Dataset):
    """Blocks of samples x genes over a matrix, for training without an index table.

    Samples and genes are shuffled once (``seed``) and cut into blocks; item ``i`` is the
    block ``(i // n_gene_blocks, i % n_gene_blocks)`` as a dict of tensors with keys ``x``
    ``(S, G)``, ``mask`` (observed entries, absent when all are), ``sample``, ``gene`` and
    ``obs_factors``. A DataLoader with ``batch_size=1`` and
    :meth:`collate` yields one block per step; shuffling it visits the blocks in a new order
    every epoch.

    Parameters
    ----------
    values
        Dense ``(n_samples, n_genes)`` float32 array (entries outside ``mask`` are ignored).
    mask
        Boolean array of observed entries, or ``None`` (all observed).
    obs_factors
        Integer codes ``(n_samples, k)`` of the extra sample-side factors.
    sample_block, gene_block
        Block sizes.
    seed
        Seed of the block partition.
    """

    def __init__(
        self,
        values: np.ndarray,
        mask: np.ndarray | None,
        obs_factors: np.ndarray,
        *,
        sample_block: int,
        gene_block: int,
        seed: int = 0,
    ) -> None:
        self.values = torch.as_tensor(np.ascontiguousarray(values, dtype=np.float32))
        self.mask = None if mask is None else torch.as_tensor(np.asarray(mask, dtype=bool))
        self.obs_factors = torch.as_tensor(np.asarray(obs_factors, dtype=np.int64))
        n_samples, n_genes = self.values.shape
        rng = np.random.default_rng(seed)
        self.sample_blocks = _cut(rng.permutation(n_samples), max(1, int(sample_block)))
        self.gene_blocks = _cut(rng.permutation(n_genes), max(1, int(gene_block)))

    def __len__(self) -> int:
        return len(self.sample_blocks) * len(self.gene_blocks)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rows = self.sample_blocks[index // len(self.gene_blocks)]
        cols = self.gene_blocks[index % len(self.gene_blocks)]
        item = {
            "x": self.values[rows][:, cols],
            "sample": rows,
            "gene": cols,
            "obs_factors": self.obs_factors[rows],
        }
        if self.mask is not None:
            item["mask"] = self.mask[rows][:, cols]
        return item

    @staticmethod
    def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Collate function for ``batch_size=1`` loaders: the block itself."""
        if len(items) != 1:
            raise ValueError(f"FEBlocks yields whole blocks; use batch_size=1, got {len(items)}")
        return items[0]


def _cut(order: np.ndarray, size: int) -> list[torch.Tensor]:
    return [torch.as_tensor(order[i : i + size]) for i in range(0, len(order), size)]


def embed_samples(
    module: FEModule,
    values: np.ndarray,
    mask: np.ndarray | None,
    obs_factors: np.ndarray,
    *,
    epochs: int = 100,
    lr: float = 1e-2,
    gene_block: int = 2048,
    init: torch.Tensor | None = None,
) -> np.ndarray:
    """Embed new samples with the network and the gene side frozen.

    Only a fresh table of sample embeddings is optimised (Adam, full batch over samples,
    gradients accumulated over gene blocks), minimising the masked MSE of the new rows.

    Parameters
    ----------
    module
        A trained network; its parameters are left untouched.
    values, mask, obs_factors
        The new rows ``(n, n_genes)``, their observed entries and their factor codes.
    epochs, lr
        Optimisation steps and Adam learning rate.
    gene_block
        Genes per chunk (bounds memory).
    init
        Starting embeddings ``(n, d)``; default the mean training sample embedding.

    Returns
    -------
    numpy.ndarray
        ``(n, embedding_dim)`` float32 embeddings.
    """
    n = values.shape[0]
    x = torch.as_tensor(np.ascontiguousarray(values, dtype=np.float32))
    m = None if mask is None else torch.as_tensor(np.asarray(mask, dtype=bool))
    codes = torch.as_tensor(np.asarray(obs_factors, dtype=np.int64))
    if init is None:
        init = module.sample_embedding.weight.detach().mean(0, keepdim=True).expand(n, -1)
    z = nn.Parameter(init.detach().clone().float())
    optimizer = torch.optim.Adam([z], lr=lr)
    genes = torch.arange(x.shape[1])
    was_training = module.training
    frozen = [p.requires_grad for p in module.parameters()]
    module.eval()
    module.requires_grad_(requires_grad=False)
    try:
        gene_h = [
            module.gene_side(genes[i : i + gene_block]) for i in range(0, len(genes), gene_block)
        ]
        n_obs = float(m.sum()) if m is not None else float(x.numel())
        for _ in range(int(epochs)):
            optimizer.zero_grad()
            start = 0
            for gh in gene_h:
                cols = slice(start, start + gh.shape[0])
                start += gh.shape[0]
                sq = (module.head(module.sample_side(z, codes), gh) - x[:, cols]) ** 2
                if m is not None:
                    sq = sq * m[:, cols]
                (sq.sum() / max(n_obs, 1.0)).backward()
            optimizer.step()
    finally:
        for p, flag in zip(module.parameters(), frozen, strict=True):
            p.requires_grad_(flag)
        module.train(was_training)
    return z.detach().numpy().copy()
