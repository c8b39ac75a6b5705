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
    tuned = classifier.encoder.model.encoder
    before = [p.detach().clone() for p in tuned.parameters()]
    labels = np.array([0, 1, 0, 1])
    finetune(classifier, graphs, labels, graphs, labels, FinetuneConfig(epochs=2, batch_size=4))
    assert any(not torch.equal(a, b) for a, b in zip(before, tuned.parameters(), strict=True))


def test_each_classifier_starts_from_the_pretrained_weights(graphs):
    # finetune_cv builds one classifier per fold from the same pre-trained model: fine-tuning one fold's
    # classifier must leave the model (and so the next fold's start) untouched, or test folds leak.
    torch.manual_seed(0)
    model = HMGDM(SMALL)
    pretrained = {k: v.clone() for k, v in model.state_dict().items()}
    labels = np.array([0, 1, 0, 1])
    first = pretrained_classifier(model, num_classes=2, hidden_channels=8)
    finetune(first, graphs, labels, graphs, labels, FinetuneConfig(epochs=2, batch_size=4))
    assert all(torch.equal(pretrained[k], v) for k, v in model.state_dict().items())
    second = pretrained_classifier(model, num_classes=2, hidden_channels=8)
    tuned = first.encoder.model.state_dict()
    assert any(not torch.equal(tuned[k], v) for k, v in second.encoder.model.state_dict().items())
