"""The patch widget's "patch vector" choice: what the clusters and the classifier read for each patch."""

from __future__ import annotations

__all__ = ["VECTORS", "VECTOR_TOOLTIP", "vector_parts"]

# What each patch's vector holds: (whether it starts with the model's embedding, the entity kinds whose pooled
# measurements follow; None: the kind of the "entities" box). Another kind's graph is built for its measurements only.
VECTORS: dict[str, tuple[bool, tuple[str, ...] | None]] = {
    "embedding": (True, ()),
    "embedding + measurements": (True, None),
    "embedding + tissue & nuclei": (True, ("tissue", "nuclei")),
    "tissue & nuclei measurements": (False, ("tissue", "nuclei")),
}
VECTOR_TOOLTIP = (
    "What the clusters and the classifier read for each patch: the model's embedding, with each patch's mean and "
    "spread of its entities' colour, size and shape measurements appended (of the entities chosen above, or of "
    "tissue and nuclei: a nuclei graph is then built per patch for its measurements), or those measurements alone. "
    "Kather 2016, slide-grouped linear probe, macro-F1 (benchmarks/representation.py, the bundled model), with 10 "
    "marked tiles per class: embedding 55.2 %, + tissue measurements 56.0 %, + tissue and nuclei measurements "
    "58.3 %, tissue and nuclei measurements only 61.5 %; with every training tile 67.7, 69.5, 71.4 and 73.0 %."
)


def vector_parts(choice: str, kind: str) -> tuple[tuple[str, ...], bool]:
    """A ``VECTORS`` choice as ``PatchRequest`` takes it: ``(measurements, embedding)``.

    Parameters
    ----------
    choice : str
        A key of ``VECTORS``.
    kind : str
        The entity kind of the patch graphs (the widget's "entities" box).

    Returns
    -------
    tuple
        The entity kinds whose pooled measurements the vector holds, in order, and whether the model's embedding
        comes first.
    """
    embedding, kinds = VECTORS[choice]
    return ((kind,) if kinds is None else kinds), embedding
