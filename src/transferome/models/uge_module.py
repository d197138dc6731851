"""The Universal Gene Embedding network (a plain ``nn.Module``; the estimator is in ``uge.py``).

A sample is a sequence of gene tokens (its species' highly variable genes) with their relative
expression values and optional external tokens, preceded by a ``<cls>`` token:
``E = emb_gene(token) + emb_value(value) + emb_external(external)`` (paper 3.2), encoded by a
stack of pre-norm transformer blocks (3.3); the ``<cls>`` output is the sample representation
``z`` (3.4).

One latent space for every species: a gene's token embedding is *computed* from a
species-independent description of the gene (its reactome or expression-profile vector, the
same columns in every species) by a small network, plus a learned per-gene residual. Genes of
another species, or new genes, therefore embed without retraining (their residual is zero), and
the cross-species gene similarity matrix is the cosine similarity of these embeddings.

The decoder (3.6) reconstructs log expression of any gene ``g`` from ``z``:
``x_hat[g] = <U(z), V(e_g)> + b(e_g)``, where ``e_g`` is the gene's token embedding, so it can
decode the genes of any species, and the latent arithmetic of paper 4.2 is decoded this way.
A classification head on ``z`` serves annotation transfer. The loss adds the elastic cell
similarity (ECS) term of paper 3.5 in the form used by scGPT, ``1 - (relu(cos) - beta)^2``
averaged over the pairs of a batch, which pulls similar samples together and pushes dissimilar
ones apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UGEConfig", "UGENetwork", "ecs_loss"]


@dataclass(frozen=True)
class UGEConfig:
    """Shape and loss weights of :class:`UGENetwork`.

    Parameters
    ----------
    n_genes
        Size of the gene vocabulary (all genes of all training species).
    n_features
        Length of a gene's description vector.
    d_model, n_layers, n_heads, d_ff, dropout
        Transformer size (paper defaults: 256, 4, 8).
    n_external
        Number of external-token categories (index 0 means "none").
    n_classes
        Classes of the annotation head (0: no head).
    mask_fraction
        Fraction of input values hidden during training (the decoder must restore them).
    ecs_weight, ecs_beta
        Weight and threshold of the ECS similarity loss.
    class_weight
        Weight of the cross-entropy of the annotation head.
    residual_weight
        L2 penalty on the per-gene residuals, so that the description network carries most of
        a gene's embedding (what transfers to unseen genes).
    """

    n_genes: int
    n_features: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 8
    d_ff: int = 512
    dropout: float = 0.1
    n_external: int = 1
    n_classes: int = 0
    mask_fraction: float = 0.15
    ecs_weight: float = 0.1
    ecs_beta: float = 0.6
    class_weight: float = 1.0
    residual_weight: float = 1e-3


def ecs_loss(z: Tensor, beta: float) -> Tensor:
    """Elastic cell similarity loss over the distinct pairs of a batch of sample embeddings."""
    n = z.shape[0]
    if n < 2:
        return z.new_zeros(())
    unit = F.normalize(z, dim=-1)
    cos = unit @ unit.T
    off = ~torch.eye(n, dtype=torch.bool, device=z.device)
    return torch.mean(1.0 - (F.relu(cos[off]) - beta) ** 2)


class _MLP(nn.Sequential):
    def __init__(self, n_in: int, n_hidden: int, n_out: int) -> None:
        super().__init__(
            nn.Linear(n_in, n_hidden), nn.GELU(), nn.LayerNorm(n_hidden), nn.Linear(n_hidden, n_out)
        )


class _Block(nn.Module):
    """Pre-norm transformer block; attention through ``scaled_dot_product_attention``.

    Dropout acts on the residual branches only, not on the attention weights, so attention
    runs in the fused kernel (an attention-weight dropout forces the slow unfused path).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        b, m, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).split(d, dim=-1)
        shape = (b, m, self.n_heads, d // self.n_heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, m, d)
        h = h + self.drop(self.proj(attended))
        return h + self.drop(self.ff(self.norm2(h)))


class UGENetwork(nn.Module):
    """Gene-description token embeddings, a transformer encoder, a gene-conditioned decoder."""

    def __init__(self, config: UGEConfig, descriptions: Tensor | None = None) -> None:
        super().__init__()
        c = config
        self.config = c
        if descriptions is None:
            descriptions = torch.zeros(c.n_genes, c.n_features)
        if tuple(descriptions.shape) != (c.n_genes, c.n_features):
            raise ValueError(
                f"descriptions have shape {tuple(descriptions.shape)}, expected "
                f"({c.n_genes}, {c.n_features})"
            )
        self.register_buffer("descriptions", descriptions.float().clone())
        self.gene_net = _MLP(c.n_features, c.d_model, c.d_model)
        self.residual = nn.Embedding(c.n_genes, c.d_model)
        nn.init.zeros_(self.residual.weight)
        self.value_net = _MLP(1, c.d_model, c.d_model)
        self.mask_embedding = nn.Parameter(torch.zeros(c.d_model))
        self.external = nn.Embedding(max(c.n_external, 1), c.d_model)
        self.cls = nn.Parameter(torch.randn(c.d_model) * 0.02)
        self.blocks = nn.ModuleList(
            _Block(c.d_model, c.n_heads, c.d_ff, c.dropout) for _ in range(c.n_layers)
        )
        self.norm = nn.LayerNorm(c.d_model)
        self.sample_head = _MLP(c.d_model, c.d_model, c.d_model)
        self.gene_head = _MLP(c.d_model, c.d_model, c.d_model)
        self.gene_bias = nn.Linear(c.d_model, 1)
        self.classifier = nn.Linear(c.d_model, c.n_classes) if c.n_classes > 0 else None

    # -- genes -------------------------------------------------------------------------------
    def gene_table(self, descriptions: Tensor | None = None) -> Tensor:
        """Token embeddings of genes: the vocabulary's (with residuals) or new descriptions'."""
        if descriptions is None:
            return self.gene_net(self.descriptions) + self.residual.weight
        return self.gene_net(descriptions.to(self.descriptions))

    # -- encoder -----------------------------------------------------------------------------
    def encode(
        self,
        tokens: Tensor,
        values: Tensor,
        external: Tensor | None = None,
        *,
        table: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        """``<cls>`` embeddings (batch, d_model) of samples.

        Parameters
        ----------
        tokens
            (batch, M) indices into ``table`` (the vocabulary by default).
        values
            (batch, M) relative expression values of the tokens.
        external
            (batch,) external-token category of each sample (0: none).
        table
            Gene token embeddings to index (see :meth:`gene_table`).
        mask
            (batch, M) boolean, True where the value is hidden.
        """
        if table is None:
            table = self.gene_table()
        h = table[tokens] + self.value_net(values.unsqueeze(-1))
        if mask is not None:
            h = torch.where(mask.unsqueeze(-1), table[tokens] + self.mask_embedding, h)
        if external is not None:
            h = h + self.external(external).unsqueeze(1)
        cls = self.cls.expand(h.shape[0], 1, -1)
        h = torch.cat([cls, h], dim=1)
        for block in self.blocks:
            h = block(h)
        return self.norm(h[:, 0])

    # -- decoder -----------------------------------------------------------------------------
    def decode(self, z: Tensor, genes: Tensor, *, table: Tensor | None = None) -> Tensor:
        """Log expression of ``genes`` given ``z``.

        ``genes`` is (n_genes,) (same genes for every sample) or (batch, n_genes) indices into
        ``table`` (the vocabulary by default). Returns (batch, n_genes).
        """
        if table is None:
            table = self.gene_table()
        u = self.sample_head(z)
        if genes.ndim == 1:
            used = table[genes]
            return u @ self.gene_head(used).T + self.gene_bias(used).squeeze(-1)
        unique, inverse = torch.unique(genes, return_inverse=True)
        used = table[unique]
        v, b = self.gene_head(used), self.gene_bias(used).squeeze(-1)
        return torch.einsum("bd,bgd->bg", u, v[inverse]) + b[inverse]

    def classify(self, z: Tensor) -> Tensor:
        """Class logits of the annotation head."""
        if self.classifier is None:
            raise ValueError("this network has no annotation head (n_classes=0)")
        return self.classifier(z)

    # -- training ----------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(z, reconstruction)`` of a batch (see :meth:`loss` for its keys)."""
        table = self.gene_table()
        mask = None
        if self.training and self.config.mask_fraction > 0:
            mask = torch.rand(batch["values"].shape, device=batch["values"].device)
            mask = mask < self.config.mask_fraction
        z = self.encode(
            batch["tokens"], batch["values"], batch.get("external"), table=table, mask=mask
        )
        return z, self.decode(z, batch["decode_genes"], table=table)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Training loss of a batch.

        ``batch`` holds ``tokens`` and ``values`` (batch, M), ``decode_genes``, ``targets`` and
        ``decode_mask`` (batch, G), and optionally ``external`` and ``label`` (batch,; label -1
        for unlabelled samples).
        """
        c = self.config
        z, recon = self(batch)
        weight = batch["decode_mask"].to(recon.dtype)
        reconstruction = ((recon - batch["targets"]) ** 2 * weight).sum() / weight.sum().clamp(
            min=1.0
        )
        similarity = ecs_loss(z, c.ecs_beta)
        residual = self.residual.weight.pow(2).sum(-1).mean()
        out = {"reconstruction": reconstruction, "ecs": similarity, "residual": residual}
        total = reconstruction + c.ecs_weight * similarity + c.residual_weight * residual
        if self.classifier is not None and "label" in batch:
            labels = batch["label"]
            if bool((labels >= 0).any()):
                classification = F.cross_entropy(self.classifier(z), labels, ignore_index=-1)
            else:
                classification = z.new_zeros(())
            out["classification"] = classification
            total = total + c.class_weight * classification
        out["loss"] = total
        return out
