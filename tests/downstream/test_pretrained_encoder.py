import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from hmgdm_core.downstream import FinetuneConfig, finetune, predict_graphs, pretrained_classifier
from hmgdm_core.embed import embed_graph
from hmgdm_core.model import HMGDM, ModelConfig

SMALL = ModelConfig(
    feature_dim=192, embed_dim=32, hidden_dim=16, latent_mlp_dim=8, time_mlp_dim=32, block_mlp_dim=8, head_dims=(16, 32)
)


@pytest.fixture(scope="module")
def graphs(small_patch_graphs):
    return small_patch_graphs


def test_encoder_gives_the_embedding_latents_and_fine_tunes(graphs):
    torch.manual_seed(0)
    model = HMGDM(SMALL)
    classifier = pretrained_classifier(model, num_classes=2, hidden_channels=8)
    classifier.eval()
    node, graph_of_node = classifier.encoder(Batch.from_data_list(graphs[:2]))
    first = graphs[0].num_nodes
    torch.testing.assert_close(node[:first], embed_graph(model, graphs[0]).node)
    assert graph_of_node.tolist() == [0] * first + [1] * graphs[1].num_nodes
    predictions = predict_graphs(classifier, graphs)
    for graph, attention in zip(graphs, predictions.attention, strict=True):
        assert attention.shape == (graph.num_nodes,) and np.isclose(attention.sum(), 1.0, atol=1e-5)
    # End to end: the encoder's weights move with the head's.
    before = [p.detach().clone() for p in model.encoder.parameters()]
    labels = np.array([0, 1, 0, 1])
    finetune(classifier, graphs, labels, graphs, labels, FinetuneConfig(epochs=2, batch_size=4))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.encoder.parameters(), strict=True))
