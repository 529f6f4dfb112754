"""Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw ("Parallel random numbers: as easy
as 1, 2, 3", SC 2011), as the CUDA text every random kernel of minidl includes, and its NumPy reference.

A Philox4x32 round maps a counter block (c0, c1, c2, c3) under a key (k0, k1) to

    (hi(M1·c2) ^ c1 ^ k0,  lo(M1·c2),  hi(M0·c0) ^ c3 ^ k1,  lo(M0·c0)),   M0 = 0xD2511F53, M1 = 0xCD9E8D57,

with hi/lo the upper and lower 32 bits of the 64-bit product; ten rounds, the key bumped by the Weyl constants
(0x9E3779B9, 0xBB67AE85) before each round after the first. It holds Random123's known-answer vectors.

minidl's draws: element ``i`` (a 64-bit index) of the draw numbered ``counter`` under a 64-bit ``seed`` reads the
block (i mod 2^32, i >> 32, counter mod 2^32, counter >> 32) under the key (seed mod 2^32, seed >> 32), so each
element is one independent evaluation (no state, no order, the same bits on every device, path and thread
geometry), and

    uniform = (w0 >> 8) · 2^-24                 in [0, 1), exact in float32 (24 random bits);
    normal  = sqrt(-2 ln u1) · cos(2π u2)        Box-Muller, u1 = ((w0 >> 8) + 1) · 2^-24 in (0, 1],
                                                 u2 = (w1 >> 8) · 2^-24, computed in float64, rounded to float32.

The uniforms are the same bits on every path. The normals go through ln and cos, whose last float64 bit may
differ between libraries (CUDA's, glibc's, NumPy's); after the rounding to float32 a difference needs a float64
result within a few ulps of a float32 rounding boundary, so the paths agree in all but about one value in 2^27.
(``numpy.random.Philox`` is Philox4x64, another member of the family, so it is no oracle for these words.)
"""

import numpy

from minidl.backend.elementwise import Elementwise

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
ROUNDS = 10
UNIT = numpy.float32(2.0**-24)

PREAMBLE = r"""
__device__ __forceinline__ void minidl_philox4x32_10(unsigned int c[4], unsigned int k0, unsigned int k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const unsigned long long p0 = (unsigned long long)0xD2511F53u * c[0];
    const unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c[2];
    const unsigned int c1 = c[1], c3 = c[3];
    c[0] = (unsigned int)(p1 >> 32) ^ c1 ^ k0;
    c[1] = (unsigned int)p1;
    c[2] = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
    c[3] = (unsigned int)p0;
  }
}
// the words of element i of draw `counter` under `seed`
__device__ __forceinline__ void minidl_philox_words(unsigned long long seed, unsigned long long counter,
                                                    unsigned long long i, unsigned int w[4]) {
  w[0] = (unsigned int)i;
  w[1] = (unsigned int)(i >> 32);
  w[2] = (unsigned int)counter;
  w[3] = (unsigned int)(counter >> 32);
  minidl_philox4x32_10(w, (unsigned int)seed, (unsigned int)(seed >> 32));
}
__device__ __forceinline__ float minidl_uniform(unsigned long long seed, unsigned long long counter,
                                                unsigned long long i) {
  unsigned int w[4];
  minidl_philox_words(seed, counter, i, w);
  return (float)(w[0] >> 8) * 5.9604644775390625e-08f;
}
__device__ __forceinline__ float minidl_normal(unsigned long long seed, unsigned long long counter,
                                               unsigned long long i) {
  unsigned int w[4];
  minidl_philox_words(seed, counter, i, w);
  const double u1 = (double)((w[0] >> 8) + 1u) * 5.9604644775390625e-08;
  const double u2 = (double)(w[1] >> 8) * 5.9604644775390625e-08;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
"""


def _mulhilo(multiplier, value):
    product = numpy.uint64(multiplier) * value.astype(numpy.uint64)
    return (product >> numpy.uint64(32)).astype(numpy.uint32), product.astype(numpy.uint32)


def philoxNumpy(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counter blocks (c0, c1, c2, c3) under keys (k0, k1), arrays of uint32 (broadcast);
    returns the four output words as uint32 arrays."""
    c0, c1, c2, c3 = (numpy.asarray(c, dtype=numpy.uint32) for c in (c0, c1, c2, c3))
    k0, k1 = numpy.asarray(k0, dtype=numpy.uint32), numpy.asarray(k1, dtype=numpy.uint32)
    with numpy.errstate(over="ignore"):
        for round in range(ROUNDS):
            if round > 0:
                k0, k1 = k0 + numpy.uint32(W0), k1 + numpy.uint32(W1)
            hi0, lo0 = _mulhilo(M0, c0)
            hi1, lo1 = _mulhilo(M1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def wordsNumpy(seed, counter, index):
    """The four words of elements ``index`` (an int64 or uint64 array) of draw ``counter`` under ``seed``."""
    index = numpy.asarray(index).astype(numpy.uint64)
    seed, counter = int(seed), int(counter)
    low = numpy.uint64(0xFFFFFFFF)
    return philoxNumpy(index & low, index >> numpy.uint64(32), counter & 0xFFFFFFFF, counter >> 32,
                       seed & 0xFFFFFFFF, seed >> 32)


def uniformNumpy(seed, counter, index):
    """The float32 uniforms in [0, 1) of elements ``index`` of draw ``counter`` under ``seed``."""
    word = wordsNumpy(seed, counter, index)[0]
    return (word >> numpy.uint32(8)).astype(numpy.float32) * UNIT


def normalNumpy(seed, counter, index):
    """The float32 standard normals of elements ``index`` of draw ``counter`` under ``seed`` (Box-Muller)."""
    w0, w1 = wordsNumpy(seed, counter, index)[:2]
    u1 = ((w0 >> numpy.uint32(8)).astype(numpy.float64) + 1) * 2.0**-24
    u2 = (w1 >> numpy.uint32(8)).astype(numpy.float64) * 2.0**-24
    return (numpy.sqrt(-2.0 * numpy.log(u1)) * numpy.cos(6.283185307179586 * u2)).astype(numpy.float32)


def _philoxReference(c0, c1, c2, c3, k0, k1, x0, x1, x2, x3):
    for out, word in zip((x0, x1, x2, x3), philoxNumpy(c0, c1, c2, c3, k0, k1)):
        out[...] = word


# the bare generator, one counter block and key per element: what the known-answer tests hold
philoxKer = Elementwise(
    "minidl_philox4x32_10",
    "uint32 c0, uint32 c1, uint32 c2, uint32 c3, uint32 k0, uint32 k1",
    "uint32 x0, uint32 x1, uint32 x2, uint32 x3",
    "unsigned int w[4] = {c0, c1, c2, c3}; minidl_philox4x32_10(w, k0, k1); x0 = w[0]; x1 = w[1]; x2 = w[2]; "
    "x3 = w[3]",
    _philoxReference,
    preamble=PREAMBLE,
)


def _computed(draws, first, second, out, scaled):
    """``scaled(first, second, draws)`` written into ``out`` as the CUDA text computes it: each draw rounded to out's
    dtype (its ``(T)`` cast), then the arithmetic in the compute type (float32 for float16, whose CUDA type converts
    to float for arithmetic), rounded once into out."""
    work = numpy.float32 if out.dtype == numpy.float16 else out.dtype.type
    out[...] = scaled(work(first), work(second), draws.reshape(out.shape).astype(out.dtype).astype(work))


def _uniformReference(seed, counter, low, high, u):
    _computed(uniformNumpy(seed, counter, numpy.arange(u.size)), low, high, u,
              lambda low, high, uniform: low + (high - low) * uniform)


uniformKer = Elementwise(
    "minidl_uniform",
    "uint64 seed, uint64 counter, T low, T high",
    "T u",
    "u = low + (high - low) * (T)minidl_uniform(seed, counter, i)",
    _uniformReference,
    preamble=PREAMBLE,
)


def _normalReference(seed, counter, mean, sigma, z):
    _computed(normalNumpy(seed, counter, numpy.arange(z.size)), mean, sigma, z,
              lambda mean, sigma, normal: mean + sigma * normal)


normalKer = Elementwise(
    "minidl_normal",
    "uint64 seed, uint64 counter, T mean, T sigma",
    "T z",
    "z = mean + sigma * (T)minidl_normal(seed, counter, i)",
    _normalReference,
    preamble=PREAMBLE,
)
