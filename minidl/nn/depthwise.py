"""Depthwise convolution by shifted slices: the direct algorithm of a Conv2D whose groups each see ONE input map.

With C input maps, m = O / C output maps per input map and W viewed as (C, m, kh, kw), each tap (ky, kx) of
the window reads one strided slice of the zero-padded input, xs_{ky,kx}[n, c, oy, ox] = xpad[n, c, oy sy +
ky dy, ox sx + kx dx], and

    y[n, c m + j] = Σ_{ky, kx} W[c, j, ky, kx] xs_{ky,kx}[n, c]
    ∂xpad[slice of tap (ky, kx)] += Σ_j W[c, j, ky, kx] grad[n, c m + j]
    ∂W[c, j, ky, kx] = Σ_{n, oy, ox} grad[n, c m + j] xs_{ky,kx}[n, c]

kh kw array operations over the whole batch: a per-map matrix product would be C products of one row each,
and im2col would copy the input kh kw times for nothing. Every operation goes through ``xp``, so the same code
serves CuPy.
"""

from minidl.backend import xp


def tapSlices(window, outH, outW):
    """For each tap (ky, kx): (ky, kx, rows, cols), the padded input's strided slices it reads."""
    (kh, kw), (sy, sx), (dy, dx) = window.size, window.stride, window.dilation
    for ky in range(kh):
        for kx in range(kw):
            yield (ky, kx, slice(ky * dy, ky * dy + sy * (outH - 1) + 1, sy),
                   slice(kx * dx, kx * dx + sx * (outW - 1) + 1, sx))


def padImages(images, pad):
    """images (N, C, H, W) with pad = (ph, pw) rows and columns of zeros on each side."""
    (ph, pw), (batch, maps, height, width) = pad, images.shape
    if ph == 0 and pw == 0:
        return images
    padded = xp.zeros((batch, maps, height + 2 * ph, width + 2 * pw), dtype=images.dtype)
    padded[:, :, ph:ph + height, pw:pw + width] = images
    return padded


def depthwiseForward(images, weights, window):
    """y (N, C m, outH, outW) of images (N, C, H, W) and weights (C m, 1, kh, kw)."""
    batch, maps = images.shape[:2]
    outH, outW = window.outShape(*images.shape[2:], "depthwise convolution")
    taps = weights.reshape(maps, -1, *window.size)  # (C, m, kh, kw)
    padded = padImages(images, window.pad)[:, :, None]  # (N, C, 1, H', W'): broadcast over the m outputs
    out = xp.zeros((batch, maps, taps.shape[1], outH, outW), dtype=images.dtype)
    product = xp.empty_like(out)
    for ky, kx, rows, cols in tapSlices(window, outH, outW):
        out += xp.multiply(taps[:, :, ky, kx, None, None], padded[:, :, :, rows, cols], out=product)
    return out.reshape(batch, -1, outH, outW)


def depthwiseGradInput(grad, weights, window, inShape):
    """∂images (N, C, H, W) of grad (N, C m, outH, outW)."""
    batch, maps, height, width = inShape
    outH, outW = grad.shape[2:]
    (ph, pw), taps = window.pad, weights.reshape(maps, -1, *window.size)
    grad = grad.reshape(batch, maps, -1, outH, outW)
    padded = xp.zeros((batch, maps, height + 2 * ph, width + 2 * pw), dtype=grad.dtype)
    product = xp.empty((batch, maps, outH, outW), dtype=grad.dtype)
    for ky, kx, rows, cols in tapSlices(window, outH, outW):
        if taps.shape[1] == 1:
            padded[:, :, rows, cols] += xp.multiply(grad[:, :, 0], taps[:, 0, ky, kx, None, None], out=product)
        else:
            padded[:, :, rows, cols] += xp.einsum("ncjyx,cj->ncyx", grad, taps[:, :, ky, kx])
    return padded[:, :, ph:ph + height, pw:pw + width]


def depthwiseGradWeights(grad, images, window):
    """∂W (C m, 1, kh, kw) of grad (N, C m, outH, outW) at images (N, C, H, W)."""
    batch, maps = images.shape[:2]
    outH, outW = grad.shape[2:]
    grad = grad.reshape(batch, maps, -1, outH, outW)
    padded = padImages(images, window.pad)
    gradW = xp.empty((maps, grad.shape[2], *window.size), dtype=grad.dtype)
    for ky, kx, rows, cols in tapSlices(window, outH, outW):
        gradW[:, :, ky, kx] = xp.einsum("ncjyx,ncyx->cj", grad, padded[:, :, rows, cols])
    return gradW.reshape(-1, 1, *window.size)
