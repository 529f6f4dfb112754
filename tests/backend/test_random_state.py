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


def _pcg64State(**changes):
    seed(8)
    state = getRandomState()
    host = state["host"]
    host["state"] = {**host["state"], **changes.pop("state", {})}
    return {**state, "host": {**host, **changes}}


@pytest.mark.parametrize("changes", [{"state": {"state": -1}}, {"state": {"inc": 2**200}}, {"uinteger": -5}])
def test_out_of_range_state_numbers_are_a_backend_error(changes):
    bad = _pcg64State(**changes)
    seed(6)
    expected = generator().standard_normal(3)
    seed(6)
    with pytest.raises(BackendError, match="cannot restore the PCG64 random state"):
        setRandomState(bad)
    numpy.testing.assert_array_equal(generator().standard_normal(3), expected)


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, "7", [1, 2], None, True, False])  # a bool is no count (validation)
def test_seed_takes_one_integer_and_a_bad_one_resets_nothing(bad):
    seed(6)
    expected = generator().standard_normal(3)
    seed(6)
    with pytest.raises(BackendError, match=r"seed takes an integer in \[0, 2\*\*64\)"):
        seed(bad)
    numpy.testing.assert_array_equal(generator().standard_normal(3), expected)
    seed(numpy.uint64(2**64 - 1))  # the largest seed, as a NumPy integer
