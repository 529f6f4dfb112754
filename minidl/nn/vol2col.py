"""vol2col and col2vol: im2col and col2im for NCDHW volumes, built on the 2-D ones (``minidl.nn.im2col``).

For a window of (kd, kh, kw) taps with stride (sd, sh, sw), padding (pd, ph, pw) and dilation (dd, dh, dw),
the output has outD = (D + 2 pd - dd (kd - 1) - 1) // sd + 1 planes (outH, outW likewise) and

    col[n, c, kz, ky, kx, oz, oy, ox] = vol[n, c, oz sd - pd + kz dd, oy sh - ph + ky dh, ox sw - pw + kx dw]

(padValue outside), so a 3-D convolution is one matrix product per image, W (O, C kd kh kw) @ col[n]. The depth
axis is padded first, the 2-D im2col gathers every (kh, kw) window of each of the C Dp depth planes (the
volume seen as an (N, C Dp, H, W) image), and each depth tap kz then copies the strided planes oz sd + kz dd of
that into its place: kd slice copies, no new kernel. col2vol is the adjoint: each depth tap adds its planes back
(slices of one tap never overlap, so no two writes meet), then col2im sums the (kh, kw) windows into pixels.
"""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.im2col import Window, col2im, im2col
from minidl.validation import checkInteger


def triple(value, what):
    """(value,) * 3 for an int, or a triple of ints; ModuleError otherwise."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * 3
    if len(items) != 3:
        raise ModuleError(f"{what} must be an int or a triple of ints, got {value!r}")
    return tuple(checkInteger(item, f"{what} (an int or a triple of ints)") for item in items)


class Window3D:
    """The geometry of a sliding 3-D window: taps, stride, pad, dilation, each a (depth, rows, cols) triple;
    ``plane`` is the (rows, cols) Window the 2-D kernels run. ``ceilMode`` as ``Window``'s, on every axis."""

    def __init__(self, size, stride=1, pad=0, dilation=1, ceilMode=False):
        self.size, self.stride = triple(size, "size"), triple(stride, "stride")
        self.pad, self.dilation = triple(pad, "pad"), triple(dilation, "dilation")
        self.ceilMode = bool(ceilMode)
        if min(self.size + self.stride + self.dilation) < 1 or min(self.pad) < 0:
            raise ModuleError(f"window size, stride and dilation must be >= 1 and pad >= 0, got size={self.size}, "
                              f"stride={self.stride}, pad={self.pad}, dilation={self.dilation}")
        self.plane = Window(self.size[1:], self.stride[1:], self.pad[1:], self.dilation[1:], ceilMode)
        # the depth axis as the rows of a one-column image, for its output count
        self.depth = Window((self.size[0], 1), (self.stride[0], 1), (self.pad[0], 0), (self.dilation[0], 1), ceilMode)

    def __repr__(self):
        return f"size={self.size}, stride={self.stride}, pad={self.pad}, dilation={self.dilation}"

    def outShape(self, depth, height, width, what):
        """(outD, outH, outW) for an input of (depth, height, width); ModuleError if the window does not fit."""
        spans = [d * (k - 1) + 1 for k, d in zip(self.size, self.dilation)]
        sides = (depth, height, width)
        if any(span > side + 2 * pad for span, side, pad in zip(spans, sides, self.pad)):
            raise ModuleError(f"{what}: the window {self.size} (dilated to span {tuple(spans)}) is larger than the "
                              f"padded input {tuple(side + 2 * pad for side, pad in zip(sides, self.pad))} (input "
                              f"{sides}, pad {self.pad})")
        return (self.depth.outShape(depth, 1, what)[0], *self.plane.outShape(height, width, what))

    def paddedDepth(self, depth, outD):
        """The depth planes the windows read: the input, its pads, and (ceil mode) what the last window reads past
        the trailing pad."""
        (kd, _, _), (sd, _, _), (pd, _, _), (dd, _, _) = self.size, self.stride, self.pad, self.dilation
        return max(depth + 2 * pd, (outD - 1) * sd + dd * (kd - 1) + 1)

    def depthTaps(self, outD):
        """Per depth tap kz, the slice of padded depth planes oz sd + kz dd, oz < outD, that it reads."""
        sd, dd = self.stride[0], self.dilation[0]
        return [slice(kz * dd, kz * dd + sd * (outD - 1) + 1, sd) for kz in range(self.size[0])]


def vol2col(vol, window, padValue=0):
    """col (N, C, kd, kh, kw, outD, outH, outW) gathered from vol (N, C, D, H, W)."""
    batch, maps, depth, height, width = vol.shape
    outD, outH, outW = window.outShape(depth, height, width, "vol2col")
    paddedDepth = window.paddedDepth(depth, outD)
    if paddedDepth == depth:
        padded = xp.ascontiguousarray(vol)
    else:
        padded = xp.full((batch, maps, paddedDepth, height, width), padValue, dtype=vol.dtype)
        padded[:, :, window.pad[0]:window.pad[0] + depth] = vol
    kd, kh, kw = window.size
    planes = im2col(padded.reshape(batch, maps * paddedDepth, height, width), window.plane, padValue)
    planes = planes.reshape(batch, maps, paddedDepth, kh, kw, outH, outW)
    col = xp.empty((batch, maps, kd, kh, kw, outD, outH, outW), dtype=vol.dtype)
    for kz, taps in enumerate(window.depthTaps(outD)):
        col[:, :, kz] = planes[:, :, taps].transpose(0, 1, 3, 4, 2, 5, 6)
    return col


def col2vol(col, window, depth, height, width):
    """The volume (N, C, depth, height, width) whose voxels sum the col entries (N, C, kd, kh, kw, outD, outH,
    outW) read from them: vol2col's adjoint."""
    batch, maps, kd, kh, kw, outD, outH, outW = col.shape
    paddedDepth = window.paddedDepth(depth, outD)
    planes = xp.zeros((batch, maps, paddedDepth, kh, kw, outH, outW), dtype=col.dtype)
    for kz, taps in enumerate(window.depthTaps(outD)):
        planes[:, :, taps] += col[:, :, kz].transpose(0, 1, 4, 2, 3, 5, 6)
    image = col2im(planes.reshape(batch, maps * paddedDepth, kh, kw, outH, outW), window.plane, height, width)
    vol = image.reshape(batch, maps, paddedDepth, height, width)
    first = window.pad[0]
    return vol if paddedDepth == depth else xp.ascontiguousarray(vol[:, :, first:first + depth])

