"""Synthetic graphs in the graph contract for the benchmarks: kNN topology with E ≈ 5N directed edges."""

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch_geometric.data import Data


def benchmark_graph(num_nodes: int, feature_dim: int = 3072, edges_per_node: float = 5.0, seed: int = 0) -> Data:
    """N nodes with random (y, x) in a 1024² tile, the ⌈N·edges_per_node/2⌉ shortest kNN pairs, both directions."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 1024, size=(num_nodes, 2))
    _, nbr = cKDTree(pos).query(pos, k=min(8, num_nodes - 1) + 1)
    pairs = np.unique(
        np.sort(np.stack([np.repeat(np.arange(num_nodes), nbr.shape[1] - 1), nbr[:, 1:].ravel()], 1), 1), axis=0
    )
    length = np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)
    pairs = pairs[np.argsort(length)[: int(np.ceil(num_nodes * edges_per_node / 2))]]
    pairs_t = torch.as_tensor(pairs, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(num_nodes, feature_dim, generator=gen) * 2 - 1
    pair_features = torch.rand(len(pairs), feature_dim, generator=gen) * 2 - 1
    return Data(
        x=x,
        edge_index=torch.cat([pairs_t.T, pairs_t.T.flip(0)], 1),
        edge_pair=torch.arange(len(pairs)).repeat(2),
        edge_attr=pair_features.repeat(2, 1),
        pos=torch.as_tensor(pos, dtype=torch.float32),
    )
