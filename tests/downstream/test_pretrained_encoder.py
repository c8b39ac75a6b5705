from dataclasses import replace

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from hmgdm_core.downstream import FinetuneConfig, finetune, iter_finetune, predict_graphs, pretrained_classifier
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
    # The paper's head: the node latents as they are.
    classifier = pretrained_classifier(model, num_classes=2, hidden_channels=8, standardise=False, edge_context=False)
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


def test_default_head_reads_standardised_node_and_edge_latents_fitted_once_on_the_training_graphs(graphs):
    torch.manual_seed(0)
    model = HMGDM(SMALL)
    classifier = pretrained_classifier(model, num_classes=2, hidden_channels=8)
    assert not classifier.encoder.fitted and classifier.encoder.out_channels == 2 * SMALL.hidden_dim
    train, labels = graphs[:3], np.array([0, 1, 0])
    batch = Batch.from_data_list(train)
    # Each node's vector: its latent, then the mean latent of its edges (the embedding pass's rows).
    vectors = []
    for graph in train:
        embedded = embed_graph(model, graph)
        incident = torch.zeros(graph.num_nodes, SMALL.hidden_dim)
        for v in range(graph.num_nodes):
            leaving = graph.edge_index[0] == v
            if leaving.any():
                incident[v] = embedded.edge[leaving].mean(0)
        vectors.append(torch.cat([embedded.node, incident], 1))
    vectors = torch.cat(vectors)
    assert (vectors[:, SMALL.hidden_dim :].abs().sum(1) > 0).all()  # every node here has an edge
    classifier.eval()
    torch.testing.assert_close(classifier.encoder(batch)[0], vectors)  # not fitted yet: unchanged
    # Fine-tuning fits the statistics first, with the pre-trained weights: over the training nodes each unit then
    # has mean 0 and std 1 (up to the variance floor), whatever the raw scale of the latents.
    epochs = iter_finetune(classifier, train, labels, graphs[3:], np.array([1]), FinetuneConfig(epochs=2, batch_size=3))
    assert next(epochs).epoch == 0 and bool(classifier.encoder.fitted)
    torch.testing.assert_close(classifier.encoder.latent_mean, vectors.mean(0), rtol=1e-4, atol=1e-5)
    fresh = pretrained_classifier(model, num_classes=2, hidden_channels=8).encoder
    fresh.fit_standardisation(train)
    standardised = fresh.eval()(batch)[0]
    torch.testing.assert_close(standardised.mean(0), torch.zeros(2 * SMALL.hidden_dim), atol=1e-4, rtol=0)
    variance = vectors.var(0, unbiased=False)
    torch.testing.assert_close(standardised.var(0, unbiased=False), variance / (variance + 1e-5), rtol=1e-3, atol=1e-4)
    # The statistics are kept: fine-tuning the same classifier further does not refit them on moved weights.
    list(epochs)
    fitted = classifier.encoder.latent_mean.clone(), classifier.encoder.latent_std.clone()
    list(iter_finetune(classifier, train, labels, graphs[3:], np.array([1]), FinetuneConfig(epochs=1, batch_size=3)))
    assert torch.equal(classifier.encoder.latent_mean, fitted[0])
    assert torch.equal(classifier.encoder.latent_std, fitted[1])
    paper = pretrained_classifier(model, num_classes=2, hidden_channels=8, standardise=False, edge_context=False)
    assert "encoder.latent_mean" not in paper.state_dict() and paper.encoder.out_channels == SMALL.hidden_dim
    with pytest.raises(ValueError, match="standardise=True"):
        paper.encoder.fit_standardisation(train)
    # A model without the edge branch has no edge latents to append.
    lone = pretrained_classifier(HMGDM(replace(SMALL, edge_branch=False)), num_classes=2, hidden_channels=8)
    assert lone.encoder.out_channels == SMALL.hidden_dim and lone.eval().encoder(batch)[0].shape[1] == 16
