"""A recurrent character language model: Embedder → RNN(lstm, getSequences) → Linear to the vocabulary."""

from minidl.nn import RNN, Embedder, Linear, Reshape, Sequential


def lstmLM(vocabulary, embed=64, hidden=256, layers=1, dropout=0.0):
    """Token indices (time, batch) → next-token scores (time·batch, vocabulary), rows in (time, batch) order
    (the labels' order after ``reshape(-1)``)."""
    return Sequential().extend([
        Embedder(vocabulary, embed), RNN(embed, hidden, layers=layers, dropout=dropout, getSequences=True),
        Linear(hidden, vocabulary), Reshape((-1, vocabulary)),
    ])
