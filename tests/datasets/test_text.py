"""Character corpora: the default standard-library text, codes, the held-out tail, windows."""

import numpy
import pytest

from minidl.datasets.text import STDLIB_FILES, CharCodec, CharCorpus, evenWindows, randomWindows, stdlibText, windows
from minidl.errors import DataError


def test_default_text_is_the_standard_library_files():
    text = stdlibText()
    assert len(text) > 100_000 and "def dedent(text):" in text  # textwrap.py, the first of STDLIB_FILES
    assert STDLIB_FILES[0] == "textwrap.py"


def test_corpus_codes_and_held_out_tail():
    corpus = CharCorpus("hello world, " * 10)
    assert corpus.vocabulary == sorted(set("hello world, "))
    assert len(corpus.train) == 117 and len(corpus.heldOut) == 13
    assert corpus.decode(numpy.concatenate([corpus.train, corpus.heldOut])) == "hello world, " * 10
    with pytest.raises(DataError):
        corpus.encode("hello!")
    with pytest.raises(DataError):
        CharCorpus("short")
    assert CharCodec("ab").decode(CharCodec("ab").encode("abba")) == "abba"


def test_windows_are_inputs_and_next_characters_in_time_batch_layout():
    codes = numpy.arange(20, dtype=numpy.int32)
    inputs, targets = windows(codes, [0, 5], 4)
    numpy.testing.assert_array_equal(inputs, [[0, 5], [1, 6], [2, 7], [3, 8]])
    numpy.testing.assert_array_equal(targets, inputs + 1)
    inputs, _ = evenWindows(codes, 3, 4)
    numpy.testing.assert_array_equal(inputs[0], [0, 7, 15])
    inputs, targets = randomWindows(codes, 8, 5, numpy.random.default_rng(0))
    assert inputs.shape == (5, 8) and (targets == inputs + 1).all()
    with pytest.raises(DataError):
        windows(codes, [16], 4)
