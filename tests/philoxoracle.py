"""Philox4x32-10 written once more in plain Python integers, from the paper's round function (Salmon et al.
2011), independent of minidl's NumPy and CUDA texts: the oracle of the random kernels' tests."""

MASK = 2**32 - 1


def philox(counter, key):
    """The four output words of Philox4x32-10 for a counter block of four words and a key of two."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round in range(10):
        if round:
            k0, k1 = (k0 + 0x9E3779B9) & MASK, (k1 + 0xBB67AE85) & MASK
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK, (p0 >> 32) ^ c3 ^ k1, p0 & MASK
    return c0, c1, c2, c3


def uniform(seed, counter, i):
    """minidl's uniform of element i of draw ``counter`` under ``seed``: the top 24 bits of word 0 over 2^24."""
    word = philox((i & MASK, i >> 32, counter & MASK, counter >> 32), (seed & MASK, seed >> 32))[0]
    return (word >> 8) / 2**24
