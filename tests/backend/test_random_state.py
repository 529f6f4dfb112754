"""The backend's host random state: saved and restored exactly, through JSON, and refused when wrong."""

import json

import numpy
import pytest

from minidl.backend import generator, getRandomState, seed, setRandomState
from minidl.errors import BackendError


def test_restored_state_replays_the_same_draws():
    seed(5)
    generator().standard_normal(3)
    state = json.loads(json.dumps(getRandomState()))  # as a checkpoint stores it
    first = (generator().permutation(50), generator().standard_normal(4))
    generator().standard_normal(100)
    setRandomState(state)
    second = (generator().permutation(50), generator().standard_normal(4))
    for a, b in zip(first, second):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "bad", [None, {}, {"host": {"bit_generator": "MT19937"}}, {"host": {"bit_generator": "PCG64"}}]
)
def test_a_wrong_state_is_refused_and_changes_nothing(bad):
    seed(6)
    state = getRandomState()
    expected = generator().standard_normal(3)
    setRandomState(state)
    with pytest.raises(BackendError):
        setRandomState(bad)
    numpy.testing.assert_array_equal(generator().standard_normal(3), expected)
