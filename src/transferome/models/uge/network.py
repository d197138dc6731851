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

Tied ortholog tokens: genes linked by an ortholog table form groups (``gene_groups``, see
:mod:`~transferome.models.uge.orthologs`). A tied gene's token is
``gene_net(group description) + group_offset[group] + residual[gene]``: the description network
applied to the mean description of the group, a learned per-group vector, and the gene's own
(per-species) residual, which starts at zero and is pulled back to it by an L2 penalty
(``tie_weight``). Orthologs therefore start with identical tokens, and the network departs from
the ortholog table only where the data ask for it. Untied genes keep
``gene_net(description) + residual``; genes of unseen species are embedded by ``gene_net``.

Domain alignment: with ``alignment`` set, the ``<cls>`` embeddings of the species in a batch
are pulled together, by their means and covariances (``coral``, Sun & Saenko 2016) or by a
Gaussian-kernel maximum mean discrepancy (``mmd``), so that a head trained on one species'
labels reads the other species' samples the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UGEConfig", "UGENetwork", "alignment_loss", "coral_loss", "ecs_loss", "mmd_loss"]


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
        L2 penalty on the per-gene residuals of untied genes and on the per-group vectors, so
        that the description network carries most of a gene's embedding (what transfers to
        unseen genes).
    n_groups
        Number of ortholog groups (0: no tied tokens).
    tie_weight
        L2 penalty on the per-species residuals of tied genes (larger: orthologs stay closer).
    alignment
        ``none``, ``coral`` or ``mmd``: how the species' ``<cls>`` distributions are aligned.
    alignment_weight
        Weight of the alignment term.
    pooled_cls
        Start the ``<cls>`` token from the expression-weighted sum of the sample's gene
        tokens, ``cls + sum_i v_i e_i / sqrt(M)``, besides the learned ``<cls>`` vector: a
        linear read-out of the sample through its gene embeddings that the transformer then
        refines. With tied ortholog tokens, two samples of different species with the same
        (standardised) ortholog expression start from the same ``<cls>``.
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
    n_groups: int = 0
    tie_weight: float = 1.0
    alignment: str = "none"
    alignment_weight: float = 0.0
    pooled_cls: bool = False


ALIGNMENTS = ("none", "coral", "mmd")


def coral_loss(a: Tensor, b: Tensor) -> Tensor:
    """Squared distance of the means plus that of the covariances (both per entry)."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    ca, cb = a - mean_a, b - mean_b
    cov_a = ca.T @ ca / max(a.shape[0] - 1, 1)
    cov_b = cb.T @ cb / max(b.shape[0] - 1, 1)
    return (mean_a - mean_b).pow(2).mean() + (cov_a - cov_b).pow(2).mean()


def mmd_loss(a: Tensor, b: Tensor) -> Tensor:
    """Biased Gaussian-kernel MMD^2, bandwidths 0.5, 1, 2 x the median squared distance."""
    both = torch.cat([a, b])
    d2 = torch.cdist(both, both).pow(2)
    scale = d2.detach().median().clamp(min=1e-6)
    kernel = sum((torch.exp(-d2 / (f * scale)) for f in (0.5, 1.0, 2.0)), torch.zeros_like(d2))
    n = a.shape[0]
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


def alignment_loss(z: Tensor, species: Tensor, kind: str) -> Tensor:
    """Mean alignment term over the pairs of species that have two or more rows in the batch."""
    present = [s for s in torch.unique(species) if int((species == s).sum()) >= 2]
    if kind == "none" or len(present) < 2:
        return z.new_zeros(())
    fn = coral_loss if kind == "coral" else mmd_loss
    terms = [
        fn(z[species == present[i]], z[species == present[j]])
        for i in range(len(present))
        for j in range(i + 1, len(present))
    ]
    return torch.stack(terms).mean()


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

    # buffers (register_buffer): declared so that they read as tensors, not as Module attributes
    gene_groups: Tensor
    descriptions: Tensor
    class_weights: Tensor

    def __init__(
        self,
        config: UGEConfig,
        descriptions: Tensor | None = None,
        gene_groups: Tensor | None = None,
    ) -> None:
        super().__init__()
        c = config
        self.config = c
        if c.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment={c.alignment!r} is not one of {list(ALIGNMENTS)}")
        if gene_groups is None:
            gene_groups = torch.full((c.n_genes,), -1, dtype=torch.long)
        elif tuple(gene_groups.shape) != (c.n_genes,):
            raise ValueError(
                f"gene_groups have shape {tuple(gene_groups.shape)}, expected ({c.n_genes},)"
            )
        elif len(gene_groups) and int(gene_groups.max()) >= c.n_groups:
            raise ValueError(f"gene_groups name group {int(gene_groups.max())} of {c.n_groups}")
        self.register_buffer("gene_groups", gene_groups.long().clone())
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
        self.group_offset = nn.Embedding(max(c.n_groups, 1), c.d_model)
        nn.init.normal_(self.group_offset.weight, std=0.1)
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
        self.register_buffer("class_weights", torch.ones(max(c.n_classes, 1)))

    # -- genes -------------------------------------------------------------------------------
    def gene_table(self, descriptions: Tensor | None = None) -> Tensor:
        """Token embeddings of genes: the vocabulary's (with residuals) or new descriptions'."""
        if descriptions is not None:
            return self.gene_net(descriptions.to(self.descriptions))
        if self.config.n_groups == 0:
            return self.gene_net(self.descriptions) + self.residual.weight
        tied = self.gene_groups >= 0
        group = self.gene_groups.clamp(min=0)
        sums = torch.zeros(
            self.config.n_groups, self.descriptions.shape[1], device=self.descriptions.device
        ).index_add_(0, group[tied], self.descriptions[tied])
        counts = torch.bincount(group[tied], minlength=self.config.n_groups).clamp(min=1)
        shared = (sums / counts.unsqueeze(-1).to(sums))[group]
        base = torch.where(tied.unsqueeze(-1), shared, self.descriptions)
        offset = self.group_offset(group) * tied.unsqueeze(-1).to(self.descriptions)
        return self.gene_net(base) + offset + self.residual.weight

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
        if self.config.pooled_cls:
            shown = values if mask is None else torch.where(mask, 0.0, values)
            pooled = (shown.unsqueeze(-1) * table[tokens]).sum(1) / tokens.shape[1] ** 0.5
            cls = cls + pooled.unsqueeze(1)
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
        ``decode_mask`` (batch, G), and optionally ``external``, ``label`` (batch,; label -1
        for unlabelled samples) and ``species`` (batch,; the species index, for alignment).
        """
        c = self.config
        z, recon = self(batch)
        weight = batch["decode_mask"].to(recon.dtype)
        reconstruction = ((recon - batch["targets"]) ** 2 * weight).sum() / weight.sum().clamp(
            min=1.0
        )
        similarity = ecs_loss(z, c.ecs_beta)
        squares = self.residual.weight.pow(2).sum(-1)
        tied = self.gene_groups >= 0
        residual = torch.where(tied, 0.0, squares).sum() / max(int((~tied).sum()), 1)
        out = {"reconstruction": reconstruction, "ecs": similarity, "residual": residual}
        total = reconstruction + c.ecs_weight * similarity + c.residual_weight * residual
        if c.n_groups > 0:
            tie = torch.where(tied, squares, 0.0).sum() / max(int(tied.sum()), 1)
            groups = self.group_offset.weight.pow(2).sum(-1).mean()
            out["tie"] = tie
            total = total + c.tie_weight * tie + c.residual_weight * groups
        if c.alignment != "none" and "species" in batch:
            aligned = alignment_loss(z, batch["species"], c.alignment)
            out["alignment"] = aligned
            total = total + c.alignment_weight * aligned
        if self.classifier is not None and "label" in batch:
            labels = batch["label"]
            if bool((labels >= 0).any()):
                classification = F.cross_entropy(
                    self.classifier(z), labels, weight=self.class_weights, ignore_index=-1
                )
            else:
                classification = z.new_zeros(())
            out["classification"] = classification
            total = total + c.class_weight * classification
        out["loss"] = total
        return out
