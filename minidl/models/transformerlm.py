"""A small decoder-only transformer language model (GPT-2's layout): token and learned position
embeddings, pre-norm causal TransformerBlocks, a final LayerNorm and a Linear to the vocabulary."""

from minidl.nn import Embedder, LayerNorm, Linear, PositionalEmbedding, Reshape, Sequential, TransformerBlock


def transformerLM(vocabulary, embed=64, heads=4, layers=2, maxLength=256, dropout=0.0, learnedPositions=True):
    """Token indices (time <= maxLength, batch) → next-token scores (time·batch, vocabulary), rows in
    (time, batch) order (the labels' order after ``reshape(-1)``)."""
    net = Sequential().extend([Embedder(vocabulary, embed), PositionalEmbedding(maxLength, embed, learnedPositions)])
    net.extend(TransformerBlock(embed, heads, dropout=dropout, causal=True) for _ in range(layers))
    return net.extend([LayerNorm(embed), Linear(embed, vocabulary), Reshape((-1, vocabulary))])
