"""im2col and col2im: the window gathering that turns convolution and pooling into matrix products.

For an image batch of shape (N, C, H, W), a window of (kh, kw) taps with stride (sy, sx), zero padding
(ph, pw) and dilation (dy, dx), the output has outH = (H + 2 ph - dy (kh - 1) - 1) // sy + 1 rows (outW
likewise) and

    col[c, ky, kx, n, oy, ox] = img[n, c, oy sy - ph + ky dy, ox sx - pw + kx dx]   (padValue outside),

so a convolution of the whole batch is ONE matrix product, W (O, C kh kw) @ col (C kh kw, N outH outW)
(the batch sits inside the columns, so BLAS or cuBLAS sees one large product, not N small ones).
col2im is the adjoint: every image pixel receives the sum of the col entries that were read from it (the
input gradient of im2col). Both are Elementwise kernels: im2col over col, col2im over the image, each
reading the other as raw.
"""

from minidl.backend import Elementwise, scratch, xp
from minidl.errors import ModuleError
from minidl.validation import checkInteger


def pair(value, what):
    """(value, value) for an int, or a pair of ints; ModuleError otherwise."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ModuleError(f"{what} must be an int or a pair of ints, got {value!r}")
    return tuple(checkInteger(item, f"{what} (an int or a pair of ints)") for item in items)


class Window:
    """The geometry of a sliding window: taps (kh, kw), stride, pad, dilation, each a (rows, cols) pair."""

    def __init__(self, size, stride=1, pad=0, dilation=1):
        self.size, self.stride = pair(size, "size"), pair(stride, "stride")
        self.pad, self.dilation = pair(pad, "pad"), pair(dilation, "dilation")
        if min(self.size + self.stride + self.dilation) < 1 or min(self.pad) < 0:
            raise ModuleError(
                f"window size, stride and dilation must be >= 1 and pad >= 0, got size={self.size}, "
                f"stride={self.stride}, pad={self.pad}, dilation={self.dilation}"
            )

    def __repr__(self):
        return f"size={self.size}, stride={self.stride}, pad={self.pad}, dilation={self.dilation}"

    def outShape(self, height, width, what):
        """(outH, outW) for an input of (height, width); ModuleError if the window does not fit once."""
        out = []
        for length, size, stride, pad, dilation in zip(
            (height, width), self.size, self.stride, self.pad, self.dilation
        ):
            span = dilation * (size - 1) + 1
            if span > length + 2 * pad:
                raise ModuleError(
                    f"{what}: the window {self.size} (dilated to span {span}) is larger than the padded input "
                    f"{(height + 2 * self.pad[0], width + 2 * self.pad[1])} (input {(height, width)}, pad {self.pad})"
                )
            out.append((length + 2 * pad - span) // stride + 1)
        return tuple(out)

    def scalars(self, batch, maps, height, width):
        """The kernels' int arguments: batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW."""
        return (batch, maps, height, width, *self.size, *self.stride, *self.pad, *self.dilation,
                *self.outShape(height, width, "im2col"))


def _slices(ky, kx, sy, sx, dy, dx, outH, outW):
    """The padded image's rows and columns that tap (ky, kx) reads for every output position."""
    return (slice(ky * dy, ky * dy + sy * (outH - 1) + 1, sy), slice(kx * dx, kx * dx + sx * (outW - 1) + 1, sx))


def _im2colNumpy(img, batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, padValue, col):
    padded = scratch((maps, batch, h + 2 * ph, w + 2 * pw), img.dtype)  # maps first, like col
    padded.fill(padValue)
    padded[:, :, ph:ph + h, pw:pw + w] = img.transpose(1, 0, 2, 3)
    for ky in range(kh):
        for kx in range(kw):
            rows, cols = _slices(ky, kx, sy, sx, dy, dx, outH, outW)
            col[:, ky, kx] = padded[:, :, rows, cols]


im2colKer = Elementwise(
    "minidl_im2col",
    "raw T img, int32 batch, int32 maps, int32 h, int32 w, int32 kh, int32 kw, int32 sy, int32 sx, int32 ph, "
    "int32 pw, int32 dy, int32 dx, int32 outH, int32 outW, T padValue",
    "T col",
    "const int ox = i % outW; const int oy = i / outW % outH; "
    "const long long points = (long long)outW * outH; const int n = i / points % batch; "
    "const int kx = i / (points * batch) % kw; const int ky = i / (points * batch * kw) % kh; "
    "const int c = i / (points * batch * kw * kh); "
    "const int y = oy * sy - ph + ky * dy; const int x = ox * sx - pw + kx * dx; "
    "col = (y >= 0 && y < h && x >= 0 && x < w) ? img[(((long long)n * maps + c) * h + y) * w + x] : padValue",
    _im2colNumpy,
    cpuPath="numpy",  # 4 ms against 124 ms compiled for a 3x3 conv of 8x64x56x56: slices beat index division
)


def _col2imNumpy(col, batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, img):
    padded = scratch((maps, batch, h + 2 * ph, w + 2 * pw), img.dtype)
    padded.fill(0)
    for ky in range(kh):
        for kx in range(kw):
            rows, cols = _slices(ky, kx, sy, sx, dy, dx, outH, outW)
            padded[:, :, rows, cols] += col[:, ky, kx]
    img[...] = padded[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)


col2imKer = Elementwise(
    "minidl_col2im",
    "raw T col, int32 batch, int32 maps, int32 h, int32 w, int32 kh, int32 kw, int32 sy, int32 sx, int32 ph, "
    "int32 pw, int32 dy, int32 dx, int32 outH, int32 outW",
    "T img",
    "const int x = i % w + pw; const int y = i / w % h + ph; "
    "const int c = i / ((long long)w * h) % maps; const int n = i / ((long long)w * h * maps); "
    "T sum = (T)0; "
    "for (int ky = 0; ky < kh; ++ky) { "
    "  const int yy = y - ky * dy; "
    "  if (yy < 0 || yy % sy != 0 || yy / sy >= outH) continue; "
    "  for (int kx = 0; kx < kw; ++kx) { "
    "    const int xx = x - kx * dx; "
    "    if (xx < 0 || xx % sx != 0 || xx / sx >= outW) continue; "
    "    sum += col[((((long long)c * kh + ky) * kw + kx) * batch + n) * outH * outW + (yy / sy) * outW + xx / sx]; "
    "  } "
    "} "
    "img = sum",
    _col2imNumpy,
    cpuPath="numpy",  # 10 ms against 24 ms compiled, same shape
)


def im2col(img, window, padValue=0):
    """col of shape (C, kh, kw, N, outH, outW) gathered from img (N, C, H, W)."""
    scalars = window.scalars(*img.shape)
    batch, maps = img.shape[:2]
    col = xp.empty((maps, *window.size, batch, *scalars[-2:]), dtype=img.dtype)
    return im2colKer(xp.ascontiguousarray(img), *scalars, padValue, col)


def col2im(col, window, height, width):
    """The image (N, C, height, width) whose pixels sum the col (C, kh, kw, N, outH, outW) entries read
    from them."""
    col = xp.ascontiguousarray(col)
    maps, batch = col.shape[0], col.shape[3]
    img = xp.empty((batch, maps, height, width), dtype=col.dtype)
    return col2imKer(col, *window.scalars(batch, maps, height, width), img)
