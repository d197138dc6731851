"""Reactome completion: predict unmeasured (context, perturbation) entries of each species.

The model is a factorized embedding over the four descriptors of a reactome entry (gene,
context, perturbation, species), as in Factorized Embeddings (Trofimov et al. 2020) and the UGE
paper's "gene reactome vector prediction": each descriptor level has an embedding, the
embeddings are concatenated and an MLP predicts the entry. Genes of different species are tied
through their ortholog group: a gene's embedding is its group's embedding plus a small
(penalised) gene-specific residual, so that a response measured in one species informs the
ortholog of another. The whole tensor is small (genes x pairs x species), so training is
full-batch Adam on the observed entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from transferome.crossspecies.reactome import PAIR_NAMES, Reactome
from transferome.errors import DataValidationError

__all__ = ["CompletionConfig", "ReactomeCompleter", "ortholog_groups", "predict_reactome"]

Cell = tuple[str, str, str]  # (species, context, perturbation)


@dataclass(frozen=True)
class CompletionConfig:
    """Hyperparameters of the reactome completion model.

    Parameters
    ----------
    embedding_dim
        Size of every embedding.
    hidden
        Width of the two hidden layers of the MLP.
    epochs
        Full-batch Adam steps.
    lr
        Learning rate.
    gene_penalty
        L2 penalty on the gene-specific residual embeddings (ties orthologs together).
    """

    embedding_dim: int = 16
    hidden: int = 64
    epochs: int = 300
    lr: float = 1e-2
    gene_penalty: float = 0.1

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "hidden", "epochs"):
            if int(getattr(self, name)) < 1:
                raise DataValidationError(f"CompletionConfig.{name} must be at least 1")
        if self.lr <= 0 or self.gene_penalty < 0:
            raise DataValidationError("CompletionConfig needs lr > 0 and gene_penalty >= 0")


class _ReactomeNet(nn.Module):
    """Gene tower (gene residual + ortholog group embedding) dotted with a cell tower.

    The cell tower is an MLP of the concatenated context, perturbation and species embeddings;
    entry ``(gene, cell)`` is ``<u_gene, v_cell> + b_cell``. Both towers are evaluated once per
    gene and once per cell, so a step costs ``genes x cells x dim``.
    """

    def __init__(self, sizes: dict[str, int], config: CompletionConfig, generator: torch.Generator):
        super().__init__()
        dim = config.embedding_dim

        def table(n: int, scale: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(n, dim, generator=generator) * scale)

        self.gene = table(sizes["gene"], 0.01)
        self.group = table(sizes["group"], 0.3)
        self.context = table(sizes["context"], 0.3)
        self.perturbation = table(sizes["perturbation"], 0.3)
        self.species = table(sizes["species"], 0.3)
        layers: list[nn.Module] = []
        width = 3 * dim
        for out in (config.hidden, config.hidden, dim + 1):
            linear = nn.Linear(width, out)
            bound = 1.0 / np.sqrt(width)
            with torch.no_grad():
                linear.weight.copy_(torch.rand(out, width, generator=generator) * 2 * bound - bound)
                linear.bias.zero_()
            layers += [linear, nn.GELU()]
            width = out
        self.cell_mlp = nn.Sequential(*layers[:-1])

    def forward(self, genes: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """Predicted entries of ``genes`` (gene, group codes) x ``cells`` (context, pert, sp)."""
        u = self.gene[genes[:, 0]] + self.group[genes[:, 1]]
        x = torch.cat(
            [self.context[cells[:, 0]], self.perturbation[cells[:, 1]], self.species[cells[:, 2]]],
            dim=1,
        )
        v = self.cell_mlp(x)
        return u @ v[:, :-1].T + v[:, -1]


def ortholog_groups(
    genes: Mapping[str, Sequence[str]],
    orthologs: pd.DataFrame | None,
    *,
    columns: Mapping[str, str] | None = None,
) -> dict[str, pd.Series]:
    """Ortholog group of every gene of every species (connected components of the table).

    A gene without an ortholog forms its own group. Gene names of a species are looked up in
    ``columns[species]`` of ``orthologs``, or, when omitted, in the column sharing most names
    with that species, and in every other text column as well (tables of the long form
    ``source_gene, target_gene`` hold both species' genes in both columns).
    """
    index = {s: pd.Index([str(g) for g in names]) for s, names in genes.items()}
    nodes = {(s, g): i for i, (s, g) in enumerate((s, g) for s in index for g in index[s])}
    parent = np.arange(len(nodes))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    if orthologs is not None:
        text = [c for c in orthologs.columns if not pd.api.types.is_numeric_dtype(orthologs[c])]
        if columns is None and len(text) < 2:
            raise DataValidationError(
                "the ortholog table needs two gene-name columns; "
                f"columns: {list(orthologs.columns)}"
            )
        chosen = text if columns is None else list(dict.fromkeys(columns.values()))
        for col in chosen:
            if col not in orthologs.columns:
                raise DataValidationError(
                    f"ortholog table has no column {col!r}; columns: {list(orthologs.columns)}"
                )
        name_to_nodes: dict[str, list[int]] = {}
        for (_, g), i in nodes.items():
            name_to_nodes.setdefault(g, []).append(i)
        table = orthologs[chosen].astype(str).to_numpy()
        for row in table:
            members = [i for name in row for i in name_to_nodes.get(name, [])]
            for other in members[1:]:
                a, b = find(members[0]), find(other)
                if a != b:
                    parent[b] = a
    roots = np.array([find(i) for i in range(len(nodes))])
    codes = pd.factorize(roots)[0]
    out: dict[str, pd.Series] = {}
    for s in index:
        ids = [codes[nodes[(s, g)]] for g in index[s]]
        out[s] = pd.Series([f"group{k}" for k in ids], index=index[s], name="group")
    return out


class ReactomeCompleter:
    """Fit the completion model to several species' reactomes and predict every entry.

    Parameters
    ----------
    config
        :class:`CompletionConfig`.
    random_state
        Seed of the ``torch.Generator`` used for initialisation.
    """

    def __init__(self, config: CompletionConfig | None = None, *, random_state: int = 0) -> None:
        self.config = config or CompletionConfig()
        self.random_state = random_state

    def fit(
        self,
        reactomes: Mapping[str, Reactome],
        *,
        groups: Mapping[str, pd.Series] | None = None,
        hide: Sequence[Cell] = (),
    ) -> ReactomeCompleter:
        """Learn from the measured entries (minus the ``hide`` cells) of every species."""
        if not reactomes:
            raise DataValidationError("predict_reactome needs at least one species' reactome")
        pairs = sorted({pair for r in reactomes.values() for pair in r.pairs})
        self.pairs_ = pd.MultiIndex.from_tuples(pairs, names=PAIR_NAMES)
        self.species_ = list(reactomes)
        contexts = sorted({c for c, _ in pairs})
        perturbations = sorted({p for _, p in pairs})
        hidden = set(hide)
        unknown = {s for s, _, _ in hidden} - set(reactomes)
        if unknown:
            raise DataValidationError(f"hide names unknown species {sorted(unknown)}")
        groups = groups or ortholog_groups({s: r.genes for s, r in reactomes.items()}, None)
        group_levels = sorted({g for s in self.species_ for g in groups[s]})
        group_code = {g: i for i, g in enumerate(group_levels)}
        pair_codes = np.array([[contexts.index(c), perturbations.index(p)] for c, p in pairs])
        self._blocks: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        targets, masks = {}, {}
        n_gene = 0
        for k, (species, result) in enumerate(reactomes.items()):
            table = result.values.reindex(columns=self.pairs_).to_numpy(dtype=np.float64)
            mask = np.isfinite(table)
            for j, (c, p) in enumerate(pairs):
                if (species, c, p) in hidden:
                    mask[:, j] = False
            n = table.shape[0]
            gcode = groups[species].reindex(result.genes).map(group_code).to_numpy()
            gene_codes = np.stack([np.arange(n) + n_gene, gcode], axis=1)
            cell_codes = np.column_stack([pair_codes, np.full(len(pairs), k)])
            self._blocks[species] = (
                torch.as_tensor(gene_codes, dtype=torch.long),
                torch.as_tensor(cell_codes, dtype=torch.long),
            )
            targets[species], masks[species] = np.where(mask, table, 0.0), mask
            n_gene += n
        observed = np.concatenate([targets[s][masks[s]] for s in self.species_])
        if observed.size == 0:
            raise DataValidationError("no measured reactome entry is left to learn from")
        self.scale_ = float(np.std(observed)) or 1.0
        generator = torch.Generator().manual_seed(int(self.random_state))
        sizes = {
            "gene": n_gene,
            "group": len(group_levels),
            "context": len(contexts),
            "perturbation": len(perturbations),
            "species": len(self.species_),
        }
        net = _ReactomeNet(sizes, self.config, generator)
        y = {s: torch.as_tensor(targets[s] / self.scale_, dtype=torch.float32) for s in targets}
        m = {s: torch.as_tensor(masks[s], dtype=torch.float32) for s in masks}
        n_observed = float(observed.size)
        optimiser = torch.optim.Adam(net.parameters(), lr=self.config.lr)
        history = []
        for _ in range(self.config.epochs):
            optimiser.zero_grad()
            squares = (torch.sum(m[s] * (net(*self._blocks[s]) - y[s]) ** 2) for s in self.species_)
            loss = sum(squares, torch.zeros(())) / n_observed
            total = loss + self.config.gene_penalty * torch.mean(net.gene**2)
            total.backward()
            optimiser.step()
            history.append(float(loss.detach()))
        self.history_ = history
        self.net_ = net.eval()
        self._reactomes = dict(reactomes)
        return self

    def predict(self) -> dict[str, pd.DataFrame]:
        """Predicted values of every gene x pair of every species (the model's output only)."""
        out = {}
        with torch.no_grad():
            for species, result in self._reactomes.items():
                block = self.net_(*self._blocks[species]).numpy().astype(np.float64)
                out[species] = pd.DataFrame(
                    block * self.scale_, index=result.genes, columns=self.pairs_
                )
        return out


def predict_reactome(
    reactomes: Mapping[str, Reactome],
    *,
    orthologs: pd.DataFrame | None = None,
    ortholog_columns: Mapping[str, str] | None = None,
    hide: Sequence[Cell] = (),
    config: CompletionConfig | None = None,
    random_state: int = 0,
) -> dict[str, Reactome]:
    """Complete every species' reactome over the union of (context, perturbation) pairs.

    Parameters
    ----------
    reactomes
        Species -> :class:`Reactome`.
    orthologs
        Ortholog table tying genes across species (see :func:`ortholog_groups`); without it
        species share only the context, perturbation and species embeddings.
    ortholog_columns
        Species -> column of ``orthologs`` holding its gene names.
    hide
        ``(species, context, perturbation)`` cells treated as unmeasured (to validate the
        completion against their measured values).
    config
        :class:`CompletionConfig`.
    random_state
        Seed of the initialisation.

    Returns
    -------
    dict
        Species -> :class:`Reactome` whose ``values`` keep every measured entry and hold the
        prediction where the pair was not measured (or hidden); predicted entries have NaN
        ``se`` and ``n_treated == 0`` in ``n``.
    """
    groups = ortholog_groups(
        {s: r.genes for s, r in reactomes.items()}, orthologs, columns=ortholog_columns
    )
    model = ReactomeCompleter(config, random_state=random_state).fit(
        reactomes, groups=groups, hide=hide
    )
    predicted = model.predict()
    hidden = set(hide)
    out = {}
    for species, result in reactomes.items():
        values = result.values.reindex(columns=model.pairs_)
        se = result.se.reindex(columns=model.pairs_)
        n = result.n.reindex(model.pairs_).fillna(0).astype(int)
        for c, p in model.pairs_:
            if (species, c, p) in hidden:
                values[(c, p)] = np.nan
                se[(c, p)] = np.nan
                n.loc[(c, p), "n_treated"] = 0
        missing = ~np.isfinite(values.to_numpy())
        filled = np.where(missing, predicted[species].to_numpy(), values.to_numpy())
        out[species] = result.replace(
            values=pd.DataFrame(filled, index=values.index, columns=model.pairs_),
            se=se,
            n=n,
        )
    return out
