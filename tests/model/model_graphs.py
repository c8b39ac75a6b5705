"""Small entity graphs following the graph contract, built here so the model tests do not depend on graph/."""

from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch_geometric.data import Data

from hmgdm_core.model import ModelConfig

TINY = ModelConfig(
    feature_dim=48, embed_dim=32, hidden_dim=16, latent_mlp_dim=8, time_mlp_dim=32, block_mlp_dim=8, head_dims=(16, 32)
)


def knn_pairs(pos: np.ndarray, k: int) -> np.ndarray:
    """Undirected kNN pairs (P, 2), i < j, from (N, 2) positions."""
    n = len(pos)
    if n < 2 or k == 0:
        return np.zeros((0, 2), dtype=np.int64)
    _, nbr = cKDTree(pos).query(pos, k=min(k, n - 1) + 1)
    a = np.repeat(np.arange(n), nbr.shape[1] - 1)
    b = nbr[:, 1:].reshape(-1)
    return np.unique(np.sort(np.stack([a, b], 1), axis=1), axis=0)


def contract_graph(x: torch.Tensor, pos: np.ndarray, pairs: np.ndarray, edge_feature) -> Data:
    """Data with both directions per pair, shared ``edge_pair`` ids and per-pair edge features."""
    pairs_t = torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)
    edge_index = torch.cat([pairs_t.T, pairs_t.T.flip(0)], dim=1)
    pair_id = torch.arange(len(pairs_t)).repeat(2)
    feats = edge_feature(pairs_t) if len(pairs_t) else torch.zeros(0, x.shape[1])
    return Data(
        x=x,
        edge_index=edge_index,
        edge_pair=pair_id,
        edge_attr=feats.repeat(2, 1),
        pos=torch.as_tensor(pos, dtype=torch.float32),
    )


def random_graph(num_nodes: int, feature_dim: int = 48, k: int = 3, seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 256, size=(num_nodes, 2))
    x = torch.as_tensor(rng.uniform(-1, 1, size=(num_nodes, feature_dim)), dtype=torch.float32)
    pairs = knn_pairs(pos, k)
    gen = torch.Generator().manual_seed(seed + 1)
    return contract_graph(x, pos, pairs, lambda p: torch.rand(len(p), feature_dim, generator=gen) * 2 - 1)


def monuseg_graphs(monuseg_dir: Path, count: int, nodes: int, seed: int = 0) -> list[Data]:
    """Real-pixel graphs: 32×32 windows around random points of MoNuSeg tiles, kNN topology, midpoint edge windows."""
    import tifffile

    rng = np.random.default_rng(seed)
    images = sorted((monuseg_dir / "images").rglob("*.tif"))
    graphs = []
    for i in range(count):
        rgb = tifffile.imread(images[i % len(images)])[..., :3]
        pos = rng.uniform(16, np.array(rgb.shape[:2]) - 17, size=(nodes, 2)).astype(np.float32)

        def windows(centres: np.ndarray, rgb=rgb) -> torch.Tensor:
            c = np.round(centres).astype(int)
            crops = np.stack([rgb[y - 16 : y + 16, x - 16 : x + 16] for y, x in c])
            return torch.as_tensor(crops.transpose(0, 3, 1, 2).reshape(len(c), -1) / 127.5 - 1, dtype=torch.float32)

        pairs = knn_pairs(pos, 4)
        graphs.append(contract_graph(windows(pos), pos, pairs, lambda p, pos=pos, w=windows: w(pos[p].mean(1))))
    return graphs


def same_shape_graphs(count: int, num_nodes: int = 10, feature_dim: int = 48) -> list[Data]:
    """Graphs sharing one kNN topology (hence equal node, edge and target counts) with different features."""
    graphs = []
    for i in range(count):
        graph = random_graph(num_nodes, feature_dim, k=2, seed=0)
        gen = torch.Generator().manual_seed(100 + i)
        graph.x = torch.rand(graph.x.shape, generator=gen) * 2 - 1
        graph.edge_attr = torch.rand(graph.edge_attr.shape, generator=gen) * 2 - 1
        graphs.append(graph)
    return graphs
