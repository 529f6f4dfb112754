"""Philox4x32-10 on the device: Random123's known-answer vectors on every path, the NumPy reference against a
plain-integer oracle (tests/philoxoracle.py), the same bits on both CPU paths and the simulated device (and CuPy
with a GPU), uniformity by a chi-square test, and the random state: (seed, counter) saved, restored and advanced
once per draw, with nothing drawn where nothing is random."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import backend
from minidl.backend import philox, toDevice, toHost
from minidl.errors import BackendError
from minidl.nn import Dropout, Dropout2D, NoiseInjector
from minidl.testing import checkKernel, floatDtypes, kernelPaths, runPath, shapes
from tests import philoxoracle

ROOT = Path(__file__).resolve().parents[2]

# Random123's tests/kat_vectors for philox4x32_10: counter block, key, output
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def _katArgs():
    columns = list(zip(*[counter + key for counter, key, _ in KNOWN_ANSWERS]))
    return [numpy.array(column, numpy.uint32) for column in columns] + [numpy.zeros(3, numpy.uint32)
                                                                          for _ in range(4)]


@pytest.mark.parametrize("path", ["numpy", *kernelPaths()])
def test_the_known_answer_vectors_on_every_path(path):
    words = numpy.stack(runPath(path, philox.philoxKer, _katArgs()), axis=1)
    assert words.tolist() == [list(expected) for _, _, expected in KNOWN_ANSWERS]
    assert [list(philoxoracle.philox(counter, key)) for counter, key, _ in KNOWN_ANSWERS] == words.tolist()


def test_the_known_answer_vectors_on_this_backends_device():
    outputs = philox.philoxKer(*[toDevice(arg) for arg in _katArgs()])
    words = numpy.stack([toHost(word) for word in outputs], axis=1)
    assert words.tolist() == [list(expected) for _, _, expected in KNOWN_ANSWERS]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), counter=st.integers(0, 2**64 - 1),
       index=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=8))
def test_the_numpy_words_match_the_integer_oracle_over_all_64_bits(seed, counter, index):
    """Indices beyond 2^32 too (the block's second word), which no test array is large enough to reach."""
    words = numpy.stack(philox.wordsNumpy(seed, counter, numpy.array(index, numpy.uint64)), axis=1)
    expected = [philoxoracle.philox((i & 0xFFFFFFFF, i >> 32, counter & 0xFFFFFFFF, counter >> 32),
                                    (seed & 0xFFFFFFFF, seed >> 32)) for i in index]
    assert words.tolist() == [list(word) for word in expected]


@st.composite
def drawCases(draw):
    dtype, shape = numpy.dtype(draw(floatDtypes())), draw(shapes())
    seed, counter = draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**64 - 1))
    low = float(dtype.type(draw(st.floats(-4, 4))))
    high = float(dtype.type(low + draw(st.floats(0, 4))))
    return dtype, [seed, counter, low, high, numpy.full(shape, numpy.nan, dtype)]


def uniformOracle(seed, counter, low, high, u):
    return [low + (high - low) * numpy.array([philoxoracle.uniform(seed, counter, i)
                                              for i in range(u.size)]).reshape(u.shape)]


def normalOracle(seed, counter, mean, sigma, z):
    words = [philoxoracle.philox((i & 0xFFFFFFFF, i >> 32, counter & 0xFFFFFFFF, counter >> 32),
                                 (seed & 0xFFFFFFFF, seed >> 32)) for i in range(z.size)]
    normals = [math.sqrt(-2 * math.log(((w[0] >> 8) + 1) / 2**24)) * math.cos(2 * math.pi * (w[1] >> 8) / 2**24)
               for w in words]  # rounded to float32, as the kernel's standard normals are
    return [mean + sigma * numpy.array(normals, numpy.float32).astype(numpy.float64).reshape(z.shape)]


def test_uniform_kernel_paths_and_oracle():
    checkKernel(philox.uniformKer, drawCases(), uniformOracle)


def test_normal_kernel_paths_and_oracle():
    checkKernel(philox.normalKer, drawCases(), normalOracle)


@pytest.mark.parametrize("path", ["numpy", *kernelPaths()])
@pytest.mark.parametrize("kernel, draws, scaled", [
    (philox.uniformKer, philox.uniformNumpy, lambda low, high, u: low + (high - low) * u),
    (philox.normalKer, philox.normalNumpy, lambda mean, sigma, z: mean + sigma * z)])
def test_half_draws_are_the_same_bits_on_every_path(path, kernel, draws, scaled):
    """In float16 the CUDA text rounds the draw to half, then computes low + (high - low) · u (mean + sigma · z) in
    float32 (the compute type: CuPy's float16 converts to float for arithmetic) and rounds the result once; the
    reference must too, or a float16 network's noise depends on the path (it rounded each step to half: 4,408 of
    20,000 uniforms in [0.1, 0.7) differed)."""
    first, second, n = numpy.float16(-3.3), numpy.float16(5.1), 4096
    half = draws(2024, 3, numpy.arange(n)).astype(numpy.float16).astype(numpy.float32)
    expected = scaled(numpy.float32(first), numpy.float32(second), half).astype(numpy.float16)
    (drawn,) = runPath(path, kernel, [2024, 3, first, second, numpy.full(n, numpy.nan, numpy.float16)])
    numpy.testing.assert_array_equal(drawn, expected)


def test_uniforms_pass_a_chi_square_test_and_normals_have_their_moments():
    """2^20 uniforms in 256 equal bins: the chi-square statistic (255 degrees of freedom) stays under its
    1 - 1e-6 quantile (Wilson-Hilferty: 255 (1 - 2/(9·255) + 4.753 sqrt(2/(9·255)))^3 = 384.6); draws of
    consecutive counters are uncorrelated (|r| < 5/sqrt(n)); 2^20 normals have mean within 5/sqrt(n) of 0 and
    variance within 5 sqrt(2/n) of 1."""
    n, bins = 2**20, 256
    u = philox.uniformNumpy(2024, 0, numpy.arange(n)).astype(numpy.float64)
    assert u.min() >= 0 and u.max() < 1
    counts = numpy.bincount((u * bins).astype(numpy.int64), minlength=bins)
    chiSquare = ((counts - n / bins) ** 2 / (n / bins)).sum()
    df = bins - 1
    quantile = df * (1 - 2 / (9 * df) + 4.753 * math.sqrt(2 / (9 * df))) ** 3
    assert chiSquare < quantile, (chiSquare, quantile)
    following = philox.uniformNumpy(2024, 1, numpy.arange(n)).astype(numpy.float64)
    assert abs(numpy.corrcoef(u, following)[0, 1]) < 5 / math.sqrt(n)
    z = philox.normalNumpy(2024, 2, numpy.arange(n)).astype(numpy.float64)
    assert abs(z.mean()) < 5 / math.sqrt(n) and abs(z.var() - 1) < 5 * math.sqrt(2 / n)


SAME_BITS = """
import hashlib, numpy
from minidl import backend
from minidl.backend import toDevice, toHost
from minidl.nn import Dropout, Dropout2D, NoiseInjector
x = toDevice(numpy.linspace(-3, 3, 4 * 5 * 6 * 7).reshape(4, 5, 6, 7).astype(numpy.float32))
backend.seed(99)
outputs = [Dropout(0.3)(x), Dropout2D(0.5)(x), NoiseInjector("add", "uniform", (-1.0, 2.0))(x),
           NoiseInjector("mul", "gaussian", (1.0, 0.5))(x)]
print(hashlib.sha256(b"".join(toHost(out).tobytes() for out in outputs)).hexdigest())
"""


def _digest(**env):
    result = subprocess.run([sys.executable, "-c", SAME_BITS], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[-1]


def test_the_same_bits_on_both_cpu_paths_and_the_simulated_device():
    digests = {
        "NumPy references": _digest(MINIDL_BACKEND="numpy", MINIDL_CPU_KERNELS="numpy"),
        "host-compiled CUDA text": _digest(MINIDL_BACKEND="numpy", MINIDL_CPU_KERNELS="compiled"),
        "simulated device": _digest(MINIDL_BACKEND="simulated"),
    }
    if backend.isGpu and backend.name == "cupy":
        digests["CuPy"] = _digest(MINIDL_BACKEND="cupy")
    assert len(set(digests.values())) == 1, digests


def test_dropout_masks_are_the_oracles_and_backward_reuses_them():
    x = numpy.linspace(1, 2, 60).reshape(3, 20)
    module = Dropout(0.25)
    backend.seed(5)
    backend.deviceDraw()  # the module's draw is the second of the seed
    y = toHost(module(toDevice(x)))
    keep = numpy.array([philoxoracle.uniform(5, 1, i) >= numpy.float32(0.25) for i in range(60)]).reshape(3, 20)
    assert 0 < keep.sum() < keep.size
    numpy.testing.assert_array_equal(y, numpy.where(keep, x * (1 / 0.75), 0))
    grad = numpy.linspace(-1, 1, 60).reshape(3, 20)
    numpy.testing.assert_array_equal(toHost(module.backward(toDevice(grad))), numpy.where(keep, grad * (1 / 0.75), 0))
    assert backend.getRandomState()["device"] == {"seed": 5, "counter": 2}


@pytest.mark.parametrize("make", [lambda: Dropout(0.0), lambda: Dropout(0.5).evalMode(),
                                  lambda: Dropout2D(0.0), lambda: NoiseInjector().evalMode()])
def test_nothing_random_draws_nothing(make):
    module, x = make(), toDevice(numpy.ones((2, 3, 4)))
    backend.seed(1)
    before = backend.getRandomState()
    assert module(x) is x
    assert module.backward(x) is x
    assert backend.getRandomState() == before


def test_the_device_state_round_trips_through_json_and_each_draw_advances_it():
    backend.seed(3)
    backend.deviceDraw()
    state = json.loads(json.dumps(backend.getRandomState()))
    assert state["device"] == {"seed": 3, "counter": 1}
    first = toHost(backend.uniform((4, 5)))
    backend.uniform((4, 5))
    backend.setRandomState(state)
    numpy.testing.assert_array_equal(toHost(backend.uniform((4, 5))), first)
    numpy.testing.assert_array_equal(first, philox.uniformNumpy(3, 1, numpy.arange(20)).reshape(4, 5))


@pytest.mark.parametrize("device", [None, {}, {"seed": 1}, {"seed": -1, "counter": 0}, {"seed": 0, "counter": 2**64},
                                    {"seed": 0, "counter": 1.5}, {"seed": True, "counter": 0},
                                    {"seed": 0, "counter": 0, "extra": 1}])
def test_a_bad_device_state_is_refused_and_restores_nothing(device):
    backend.seed(4)
    state = backend.getRandomState()
    expected = (backend.generator().standard_normal(2), toHost(backend.uniform(3)))
    backend.setRandomState(state)
    with pytest.raises(BackendError, match="a random state must be"):
        backend.setRandomState({**state, "device": device})
    numpy.testing.assert_array_equal(backend.generator().standard_normal(2), expected[0])
    numpy.testing.assert_array_equal(toHost(backend.uniform(3)), expected[1])


@pytest.mark.parametrize("draw, keywords, error, message", [
    (backend.uniform, {"dtype": numpy.int32}, BackendError, "uniform draws float16, float32 or float64 arrays, got"),
    (backend.normal, {"dtype": numpy.int64}, BackendError, "normal draws float16, float32 or float64 arrays, got int"),
    (backend.uniform, {"dtype": numpy.bool_}, BackendError, "got bool"),
    (backend.normal, {"dtype": numpy.complex64}, BackendError, "got complex64"),
    (backend.uniform, {"low": "0"}, BackendError, "low must be a real number, got '0'"),
    (backend.normal, {"sigma": None}, BackendError, "sigma must be a real number, got None"),
    (backend.uniform, {"shape": (-1, 2)}, ValueError, "negative dimensions"),
])
def test_a_bad_draw_is_refused_and_draws_nothing(draw, keywords, error, message):
    """An integer or bool array would hold low (the uniform truncated to 0) or truncated normals, silently; each bad
    argument is refused before the draw's counter moves, so the random state is as it was."""
    backend.seed(6)
    before = backend.getRandomState()
    with pytest.raises(error, match=message):
        draw(**{"shape": (2, 3), **keywords})
    assert backend.getRandomState() == before
