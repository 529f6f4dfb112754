"""SpatialTf: a spatial transformer's sampler, PyTorch's ``affine_grid`` followed by ``grid_sample`` (bilinear,
zeros outside the map). Its input is a list [x, theta]: x of shape (N, C, H, W), theta (N, 2, 3) affine maps
of normalised coordinates ([-1, 1] across the map). For an output of Ho x Wo positions,

    base:  u_j = -1 + 2 j / (Wo - 1) (alignCorners) or (-1 + 2 j / (Wo - 1)) (Wo - 1) / Wo (else: pixel
           centres), u = 0 for Wo = 1 (as PyTorch since 1.3); v_i likewise over Ho;
    grid:  (gx, gy)[n, i, j] = theta[n] · (u_j, v_i, 1);
    pixel: ix = (gx + 1) (W - 1) / 2 (alignCorners) or ((gx + 1) W - 1) / 2 (else); iy likewise with H;
    y[n, c, i, j] = Σ_{corners (a, b) of (iy, ix)} x[n, c, a, b] (1 - |iy - a|) (1 - |ix - b|),

corners outside the map counting as zeros. Backward: ∂x gathers grad into the four corners with the same
weights; ∂ix = Σ_c grad · ((x[y0, x1] - x[y0, x0]) (1 - wy) + (x[y1, x1] - x[y1, x0]) wy), ∂iy likewise;
∂gx = ∂ix (W - 1) / 2 or W / 2; ∂theta[n] = Σ_{i, j} (∂gx, ∂gy)ᵀ (u_j, v_i, 1). The gradient of x adds each
sample into its corners (``minidl.backend.scatterAdd``). Computed in float32 at least.
"""

import numpy

from minidl.backend import scatterAdd, xp
from minidl.backend.products import matmul
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray, describe
from minidl.validation import checkSize


def baseCoordinates(length, alignCorners, dtype):
    """The normalised coordinates of ``length`` output positions, as affine_grid's."""
    if length == 1:
        return xp.zeros((1,), dtype=dtype)
    coordinates = xp.linspace(-1.0, 1.0, length, dtype=dtype)
    return coordinates if alignCorners else coordinates * ((length - 1) / length)


def baseGrid(height, width, alignCorners, dtype):
    """(height width, 3): the rows (u_j, v_i, 1) of the output positions, row-major."""
    u = baseCoordinates(width, alignCorners, dtype)
    v = baseCoordinates(height, alignCorners, dtype)
    grid = xp.ones((height, width, 3), dtype=dtype)
    grid[:, :, 0] = u[None, :]
    grid[:, :, 1] = v[:, None]
    return grid.reshape(-1, 3)


class SpatialTf(Module):
    """``SpatialTf(shape=None, alignCorners=False)`` on [x (N, C, H, W), theta (N, 2, 3)]; the output is
    (N, C) + shape ((H, W) by default; a shape (C, Ho, Wo), as PuzzleLib's, also checks the maps)."""

    cacheAttrs = ("inData", "data", "pixels")

    def __init__(self, shape=None, alignCorners=False, name=None):
        super().__init__(name)
        self.maps = None
        if shape is not None:
            if not isinstance(shape, (tuple, list)) or len(shape) not in (2, 3):
                raise ModuleError(f"SpatialTf shape must be None or the output's (height, width), or (maps, height, "
                                  f"width) as PuzzleLib's, got {shape!r}")
            shape = tuple(checkSize(side, "SpatialTf output side") for side in shape)
            if len(shape) == 3:
                self.maps, shape = shape[0], shape[1:]
        if not isinstance(alignCorners, bool):
            raise ModuleError(f"SpatialTf alignCorners must be True or False, got {alignCorners!r}")
        self.shape, self.alignCorners = shape, alignCorners
        self.pixels = None

    def checkData(self, data):
        if not isinstance(data, (list, tuple)) or len(data) != 2:
            raise ModuleError(f"{self!r}: input must be a list [x, theta], got {describe(data)}")
        x, theta = data
        checkArray(x, f"{self!r}: x", ndim=4, floating=True)
        if self.maps is not None and x.shape[1] != self.maps:
            raise ModuleError(f"{self!r}: x must have {self.maps} maps (the shape's first side), got {x.shape}")
        checkArray(theta, f"{self!r}: theta", ndim=3, dtype=x.dtype)
        if theta.shape != (x.shape[0], 2, 3):
            raise ModuleError(f"{self!r}: theta must have shape ({x.shape[0]}, 2, 3) for x {x.shape}, got "
                              f"{theta.shape}")

    def outShape(self, x):
        return self.shape if self.shape is not None else x.shape[2:]

    def _pixels(self, x, theta, acc):
        """(N, P) pixel coordinates ix, iy of the output positions, and the base grid."""
        height, width = self.outShape(x)
        base = baseGrid(height, width, self.alignCorners, acc)
        grid = matmul(base, theta.astype(acc).transpose(0, 2, 1))  # (N, P, 2): gx, gy
        scales = [(side - 1) / 2 if self.alignCorners else side / 2 for side in (x.shape[3], x.shape[2])]
        pixels = [(grid[:, :, k] + 1) * scales[k] - (0 if self.alignCorners else 0.5) for k in range(2)]
        return pixels, scales, base

    def _corners(self, x):
        """For each of the 4 corners: flat index into a map (N, P), and weight times inside (N, P)."""
        ix, iy = self.pixels
        height, width = x.shape[2:]
        x0, y0 = xp.floor(ix), xp.floor(iy)
        corners = []
        for dy in (0, 1):
            for dx in (0, 1):
                cx, cy = x0 + dx, y0 + dy
                weight = (1 - xp.abs(ix - cx)) * (1 - xp.abs(iy - cy))
                inside = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
                index = (xp.clip(cy, 0, height - 1) * width + xp.clip(cx, 0, width - 1)).astype(numpy.int64)
                corners.append((index, xp.where(inside, weight, 0), inside))
        return corners

    def _gather(self, flat, index):
        """flat (N, C, HW) at index (N, P): (N, C, P)."""
        return xp.take_along_axis(flat, xp.broadcast_to(index[:, None, :], flat.shape[:2] + index.shape[1:]),
                                  axis=2)

    def updData(self, data):
        x, theta = data
        acc = numpy.promote_types(x.dtype, numpy.float32)
        self.pixels = self._pixels(x, theta, acc)[0]
        flat = x.astype(acc).reshape(x.shape[0], x.shape[1], -1)
        out = sum(self._gather(flat, index) * weight[:, None, :] for index, weight, _ in self._corners(x))
        return out.reshape(x.shape[:2] + tuple(self.outShape(x))).astype(x.dtype)

    def updGrad(self, grad):
        x, theta = self.inData
        acc = numpy.promote_types(x.dtype, numpy.float32)
        batch, maps = x.shape[:2]
        g = grad.astype(acc).reshape(batch, maps, -1)
        flat = x.astype(acc).reshape(batch, maps, -1)
        corners = self._corners(x)
        planes = (xp.arange(batch * maps).reshape(batch, maps, 1) * flat.shape[2])
        gradX = xp.zeros(flat.size, dtype=acc)
        values = []
        for index, weight, inside in corners:
            scatterAdd(gradX, (planes + index[:, None, :]).ravel(), (g * weight[:, None, :]).ravel())
            values.append(xp.where(inside[:, None, :], self._gather(flat, index), 0))
        ix, iy = self.pixels
        wx, wy = ix - xp.floor(ix), iy - xp.floor(iy)
        v00, v01, v10, v11 = values
        gradIx = (g * ((v01 - v00) * (1 - wy)[:, None, :] + (v11 - v10) * wy[:, None, :])).sum(axis=1)
        gradIy = (g * ((v10 - v00) * (1 - wx)[:, None, :] + (v11 - v01) * wx[:, None, :])).sum(axis=1)
        _, scales, base = self._pixels(x, theta, acc)
        gradGrid = xp.stack([gradIx * scales[0], gradIy * scales[1]], axis=1)  # (N, 2, P)
        gradTheta = matmul(gradGrid, base)
        return [gradX.reshape(x.shape).astype(x.dtype), gradTheta.astype(theta.dtype)]
