"""Conv2D: a 2-D convolution (cross-correlation) of NCHW data through im2col and a matrix product.

    y[n, o, oy, ox] = b[o] + Σ_{c in o's group, ky, kx} W[o, c, ky, kx] x[n, c, oy sy - ph + ky dy, ox sx - pw + kx dx]

With G groups, input maps and output maps are split into G equal blocks and block g of the output sees
block g of the input only. Per image n and group, y[n] = W (O/G, C/G kh kw) @ col[n] (C/G kh kw,
outH outW), already NCHW; backward: ∂col[n] = Wᵀ @ grad[n], then col2im; ∂W += Σ_n grad[n] @ col[n]ᵀ;
∂b += Σ_{n, oy, ox} grad. On the CPU, with one group and stride 1, the forward pass and ∂x (as the "full"
convolution of grad) are direct convolutions instead, no col made (``minidl.nn.directconv``: the residual CNN's
captured step 25.3 → 23.8 ms), and so is ∂W where the kernels take the maps in place (a "same" convolution, with
AVX-512: small maps too, ``IN_PLACE_SMALL_MAPS_UP_TO``; the digits CNN's training step 0.49 → 0.37 ms at batch 32)
or the maps are large. On the CPU, with one group, col[n] is made and multiplied image by image on minidl's threads
and never stored whole (``minidl.nn.columnproducts``: the residual CNN's step took 32 ms instead of 63), ∂W gathering
it again. Maps of fewer than WIDE_BELOW positions (IMAGEWISE_WIDE_BELOW for those products) not taken directly have
im2col put the batch inside the columns instead, col (C/G kh kw, N outH outW): one product per group over the whole
batch (then y's axes swapped).
The algorithm is chosen per geometry (``Conv2D.algorithm``): a 1x1 window with
stride 1 and no padding skips im2col (the input is its own col); one input map per group (depthwise) runs
its direct kernels (``minidl.nn.depthwise``) instead of C one-row products. On a GPU every product is one cuBLAS
launch (``minidl.backend.products``) and an im2col convolution's products carry its bias (``minidl.nn.convbias``):
six launches a training step, with or without a bias.
"""

import numpy

from minidl.backend import isGpu, xp
from minidl.backend.products import columnSums, matmul
from minidl.nn.columnproducts import columnProducts, columnsImageByImage
from minidl.nn.convbias import addParamGrads, im2colWithBias, unwideWithBias
from minidl.nn.convolution import checkMaps, groupedWeights, setupConvolution
from minidl.nn.depthwise import addDepthwiseGradWeights, depthwiseForward, depthwiseGradInput
from minidl.nn.directconv import IN_PLACE_VECTOR_BYTES, addDirectWeightGradient, directConvolution, directly, inPlace
from minidl.nn.gradsum import sumInto
from minidl.nn.im2col import Window, col2im, im2col
from minidl.nn.module import Module

PER_IMAGE_FROM = 64  # output positions per map from which one product per image beats one over the batch
WIDE_BELOW = 256  # maps of fewer output positions: im2col puts the batch inside the columns, one product in all
IMAGEWISE_WIDE_BELOW = 32  # the same where the products run image by image with their columns (columnProducts)
# Output positions per map from which a direct convolution's ∂W is direct too where its kernels pad the maps
# (``minidl.nn.directconv``; in place it always is): 32 images, 3x3, pad 1, 2 cores: 16 maps of 32x32 0.79 ms against
# 1.29 for im2col's products, 32 of 16x16 0.95 against 0.92, 64 of 8x8 1.45 against 0.94 (the positions past each
# row's end and the pad rows, computed and dropped, a larger share of a small map).
DIRECT_WEIGHTS_FROM = 1024
# Maps too small for one product per image (``_isWide``) go direct where the kernels take them in place if they fill a
# vector of the kernels (IN_PLACE_VECTOR_BYTES: 16 float32 positions) and have at most this many output maps; else the
# batch goes inside im2col's columns, one product over it. 32 images, forward and backward, ms: 4x4 maps from as many,
# 32 maps 0.19 direct against 0.35, 128 maps 2.37 against 2.81, 256 maps 10.5 against 8.5; 2x2 maps (a quarter of a
# vector), 64 maps 0.62 against 0.35; the digits CNN's 16 maps of 4x4 from 8, 128 images: 0.13 against 0.40.
IN_PLACE_SMALL_MAPS_UP_TO = 128


def batchedProduct(weights, col):
    """out[n, g] = weights[g] (A, K) @ col[n, g] (K, P), contiguous (N, G, A, P). Maps of PER_IMAGE_FROM
    positions or more take one product per image, already in NCHW order; smaller maps would re-read the weights
    once per image in thin products, so on the CPU the batch moves inside the columns for one product over the
    batch. On a GPU one batched product always (the weights stay in its cache; moving the batch would cost two
    copies, launches of their own), one launch (``minidl.backend.products``) even for transposed weights."""
    if col.shape[3] >= PER_IMAGE_FROM or isGpu:
        return matmul(weights, col)
    batch, groups, inner, points = col.shape
    wide = xp.ascontiguousarray(col.transpose(1, 2, 0, 3)).reshape(groups, inner, batch * points)
    out = matmul(weights, wide).reshape(groups, -1, batch, points)
    return xp.ascontiguousarray(out.transpose(2, 0, 1, 3))


def weightProduct(grad, col):
    """Σ_{n, p} grad[n, g, a, p] col[n, g, k, p], shape (G, A, K): per image then summed, or, for small
    maps on the CPU (as batchedProduct), one product over the batch."""
    if col.shape[3] >= PER_IMAGE_FROM or isGpu:
        return matmul(grad, col.transpose(0, 1, 3, 2)).sum(axis=0)
    batch, groups, inner, points = col.shape
    wideGrad = xp.ascontiguousarray(grad.transpose(1, 2, 0, 3)).reshape(groups, -1, batch * points)
    wideCol = xp.ascontiguousarray(col.transpose(1, 2, 0, 3)).reshape(groups, inner, batch * points)
    return matmul(wideGrad, wideCol.transpose(0, 2, 1))


def addWeightProduct(grad, col, out):
    """out (G, A, K) += Σ_{n, p} grad[n, g, a, p] col[n, g, k, p]. On a GPU: one product per image, summed into
    out by one reduction over the batch (two launches); on the CPU ``weightProduct``, then added."""
    if isGpu:
        sumInto(matmul(grad, col.transpose(0, 1, 3, 2)), out, axis=0)
    else:
        out += weightProduct(grad, col)


class Conv2D(Module):
    """``Conv2D(inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True)``; W has shape
    (outmaps, inmaps / groups, kh, kw), b shape (outmaps,). size, stride, pad, dilation: an int or a pair."""

    cacheAttrs = ("inData", "data", "col")
    sharedInBackward = ("wideGrad",)

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True,
                 initscheme="xavier", dtype=numpy.float32, name=None):
        super().__init__(name)
        self.window = Window(size, stride, pad, dilation)
        setupConvolution(self, inmaps, outmaps, groups, useBias, initscheme, dtype)
        self.col = self.wideGrad = None

    def checkData(self, data):
        checkMaps(self, data, ("height", "width"))
        self.window.outShape(*data.shape[2:], f"{self!r}")

    @property
    def algorithm(self):
        """How this geometry is computed: "pointwise" (a 1x1 window, stride 1, no padding: the input is its own
        col), "depthwise" (one input map per group: direct kernels, ``minidl.nn.depthwise``) or "im2col".

        The choice is open for a cuDNN convolution (``nvidia-cudnn-frontend``; CuPy 14 no longer wraps cuDNN): a
        "cudnn" algorithm, chosen here on a GPU where the frontend imports (through ``minidl.backend``, never
        imported directly), would build once per geometry (input shape, window, groups, dtype) the frontend's
        three graphs, forward (conv_fprop, with the bias as a fused pointwise add), ∂x (conv_dgrad) and ∂W
        (conv_wgrad, accumulating into ``W.grad`` through its beta = 1 scaling), keep them with their workspace
        beside the module, and run each as one launch on CuPy's stream with the device pointers of x, W, y and
        the gradients: no col, so ``_forward``, ``_gradInput`` and ``_accGradParams`` each take one branch for it
        as they do for "depthwise", and the CPU keeps im2col."""
        window = self.window
        if window.size == (1, 1) and window.stride == (1, 1) and window.pad == (0, 0):
            return "pointwise"
        return "depthwise" if self.groups > 1 and self.groups == self.inmaps else "im2col"

    def updData(self, data):
        return self._forward(data)

    def updGrad(self, grad):
        return self._gradInput(grad, self.inData.shape)

    def accGradParams(self, grad):
        self._accGradParams(grad, self.inData)

    def _isWide(self, batch, points):
        """Whether im2col puts the batch inside the columns for ``batch`` maps of ``points`` positions: on the CPU,
        for small maps (fewer than IMAGEWISE_WIDE_BELOW where ``columnProducts`` takes the products). Not on a GPU:
        the products over the batch would cost a copy of y in forward and of grad in backward, and ∂W its own
        addition, where products per image take none (Conv2D's six launches)."""
        imagewise = self.groups == 1 and columnsImageByImage(self.W.dtype, batch * self.W.size * points)
        return self.algorithm == "im2col" and not isGpu and points < (IMAGEWISE_WIDE_BELOW if imagewise else WIDE_BELOW)

    def _direct(self, inShape, points):
        """Whether the forward pass and ∂x are direct convolutions (``minidl.nn.directconv``: on the CPU, stride 1,
        one group) for data of ``inShape`` and ``points`` output positions per map: for im2col's geometries whose ∂W
        does not take the batch inside the columns (``_isWide``), which would need forward's col, and for those
        whose maps the kernels take in place, at least a vector of them, for at most IN_PLACE_SMALL_MAPS_UP_TO
        output maps (their ∂W direct too)."""
        if self.algorithm != "im2col" or not directly(self.window, self.groups, self.W.dtype):
            return False
        fillsVector = points * self.W.dtype.itemsize >= IN_PLACE_VECTOR_BYTES
        return (not self._isWide(inShape[0], points) or
                (fillsVector and self.outmaps <= IN_PLACE_SMALL_MAPS_UP_TO and self._inPlace(inShape)))

    def _inPlace(self, inShape):
        """Whether the direct kernels take data of ``inShape`` in place (``directconv.inPlace``)."""
        return inPlace(inShape, self.outmaps, self.window)

    def _biasInColumns(self):
        """Whether the products carry the bias (``minidl.nn.convbias``): on a GPU, for im2col with a bias."""
        return isGpu and self.useBias and self.algorithm == "im2col"

    def _unwide(self, product, batch, shape):
        """A product over the batch, (G, maps/G, N points), as NCHW data of ``shape``."""
        maps = product.shape[0] * product.shape[1]
        return xp.ascontiguousarray(product.reshape(maps, batch, -1).transpose(1, 0, 2)).reshape(shape)

    def _wideGrad(self, grad):
        """grad (N, O, outH, outW) as (G, O/G, N outH outW), the layout of the products over the batch; copied
        once per backward pass, for ∂x and ∂W."""
        if self.wideGrad is None:
            batch, points = grad.shape[0], grad.shape[2] * grad.shape[3]
            wide = xp.ascontiguousarray(grad.reshape(batch, self.outmaps, points).transpose(1, 0, 2))
            self.wideGrad = wide.reshape(self.groups, self.outmaps // self.groups, batch * points)
        return self.wideGrad

    def _forward(self, data):
        """y (N, O, outH, outW) of data (N, C, H, W); keeps the col that backward reads: (N, G, C/G kh kw, outH
        outW) per image, or (G, C/G kh kw, N outH outW) with the batch inside the columns (small maps)."""
        data = xp.ascontiguousarray(data)
        if self.algorithm == "depthwise":
            return depthwiseForward(data, self._depthwiseWeights(), self.window,
                                    self.b if self.useBias else None)  # bias fused
        batch = data.shape[0]
        outH, outW = self.window.outShape(*data.shape[2:], repr(self))
        if self._biasInColumns():  # out preset to b, then out += W col (col's last row of each group: ones)
            self.col, out = im2colWithBias(data, self.window, self.groups, self.b, self.outmaps)
            matmul(groupedWeights(self.W, self.groups), self.col[:, :, :-1],
                   out=out.reshape(batch, self.groups, self.outmaps // self.groups, -1), accumulate=True)
            return out
        if self._direct(data.shape, outH * outW):
            self.col = None  # ∂W gathers it, image by image
            return directConvolution(data, self.W.reshape(self.outmaps, self.inmaps, *self.window.size),
                                     self.b if self.useBias else None, self.window)
        if self._isWide(batch, outH * outW):
            self.col = im2col(data, self.window, wide=True).reshape(self.groups, -1, batch * outH * outW)
            product = matmul(groupedWeights(self.W, self.groups), self.col)
            if self.useBias:  # back in NCHW order with the bias added, in one pass
                return unwideWithBias(product, self.b, (batch, self.outmaps, outH, outW))
            out = self._unwide(product, batch, (batch, self.outmaps, outH, outW))
        else:
            out = self._columnProducts(self.W.reshape(self.outmaps, -1), data, self.window)
            self.col = None  # backward gathers it again, image by image, unless made whole below
            if out is None:
                self.col = self._wholeCol(data, outH * outW)
                out = batchedProduct(groupedWeights(self.W, self.groups), self.col)
            out = out.reshape(batch, self.outmaps, outH, outW)
        if self.useBias:
            out += self.b.reshape(-1, 1, 1)
        return out

    def _depthwiseWeights(self):
        """W as the depthwise kernels read it, (O, 1, kh, kw) (Conv1D's W is 3-D)."""
        return self.W.reshape(self.outmaps, 1, *self.window.size)

    def _columnProducts(self, left, data, window, transposed=False):
        """``columnProducts`` (``minidl.nn.columnproducts``: im2col and the products image by image on the CPU, col
        never stored whole) for an im2col convolution of one group; None where it does not apply (col is made whole:
        on a GPU, several groups, a 1x1 window). Not for small maps, whose callers take the batch inside the columns
        first (``_isWide``)."""
        if self.algorithm != "im2col" or self.groups != 1:
            return None
        return columnProducts(left, data, window, transposed)

    def _wholeCol(self, data, points):
        """col of data (N, C, H, W) whole, per image: (N, G, C/G kh kw, outH outW), ``points`` = outH outW (a 1x1
        window's: data itself)."""
        col = data if self.algorithm == "pointwise" else im2col(data, self.window)
        return col.reshape(data.shape[0], self.groups, -1, points)

    def _groupedGrad(self, grad):
        """grad (N, O, outH, outW) as (N, G, O/G, outH outW), the layout of the matrix products."""
        return xp.ascontiguousarray(grad).reshape(grad.shape[0], self.groups, self.outmaps // self.groups, -1)

    def _gradInput(self, grad, inShape):
        """∂x (inShape) of grad (N, O, outH, outW)."""
        if self.algorithm == "depthwise":
            return xp.ascontiguousarray(depthwiseGradInput(grad, self._depthwiseWeights(), self.window, inShape))
        if self._direct(inShape, grad.shape[2] * grad.shape[3]):
            fullWindow = self._fullWindow(anyMaps=True)
            if fullWindow is not None:
                weights = self.W.reshape(self.outmaps, self.inmaps, *self.window.size)
                return directConvolution(grad, weights, None, fullWindow, flipped=True)
        fullWindow = self._fullWindow()
        if fullWindow is not None:
            return self._fullConvolution(grad, fullWindow, inShape)
        batch, maps, height, width = inShape
        if self._isWide(batch, grad.shape[2] * grad.shape[3]):
            gradCol = matmul(groupedWeights(self.W, self.groups).transpose(0, 2, 1), self._wideGrad(grad))
            return col2im(gradCol.reshape(maps, *self.window.size, batch, *grad.shape[2:]), self.window, height, width,
                          batch=batch, wide=True)
        gradCol = batchedProduct(groupedWeights(self.W, self.groups).transpose(0, 2, 1), self._groupedGrad(grad))
        if self.algorithm == "pointwise":
            return gradCol.reshape(inShape)
        return col2im(gradCol.reshape(batch, maps, *self.window.size, *grad.shape[2:]), self.window, height, width)

    def _fullWindow(self, anyMaps=False):
        """On the CPU, for stride 1, pad <= d (k - 1) and no more output than input maps (an im2col
        convolution; any maps with ``anyMaps``, for a direct convolution): the window of the "full" convolution
        that gives ∂x, pad d (k - 1) - p on each side; None otherwise (with more output maps, its im2col of grad
        gathers more than col2im scatters: LeNet's 1->6 5x5 took 7.0 ms against 2.7 ms). None on a GPU: there the
        flipped weights would cost two copies per step, and a product and col2im (a thread per pixel) take two
        launches in all."""
        window = self.window
        pads = [d * (k - 1) - p for k, p, d in zip(window.size, window.pad, window.dilation)]
        if (self.algorithm != "im2col" or window.stride != (1, 1) or min(pads) < 0 or
                (self.outmaps > self.inmaps and not anyMaps) or isGpu):
            return None
        return window.remembered("full window", lambda: Window(window.size, 1, pads, window.dilation))

    def _fullConvolution(self, grad, fullWindow, inShape):
        """∂x[n, c, y, x] = Σ_{o, ky, kx} W[o, c, kh-1-ky, kw-1-kx] gradfull[n, o, y + ky dy, x + kx dx]: the
        correlation of grad, padded by d (k - 1) - p, with W flipped and its map axes swapped. An im2col of
        grad and a product replace the product and col2im (whose scattered adds cost twice the gather)."""
        groupOut, groupIn = self.outmaps // self.groups, self.inmaps // self.groups
        flipped = self.W.reshape(self.outmaps, groupIn, *self.window.size)[:, :, ::-1, ::-1]  # Conv1D's W is 3-D
        flipped = flipped.reshape(self.groups, groupOut, groupIn, -1).transpose(0, 2, 1, 3)
        flipped = xp.ascontiguousarray(flipped).reshape(self.groups, groupIn, -1)  # (G, C/G, O/G kh kw)
        batch = grad.shape[0]
        if self._isWide(batch, inShape[2] * inShape[3]):
            gradCol = im2col(grad, fullWindow, wide=True, temporary=True).reshape(self.groups, flipped.shape[2], -1)
            return self._unwide(matmul(flipped, gradCol), batch, inShape)
        out = self._columnProducts(flipped[0], grad, fullWindow)
        if out is not None:
            return out.reshape(inShape)
        gradCol = im2col(grad, fullWindow, temporary=True)
        return batchedProduct(flipped, gradCol.reshape(batch, self.groups, flipped.shape[2], -1)).reshape(inShape)

    def _accGradParams(self, grad, data):
        """∂W += ..., ∂b += Σ grad, for grad (N, O, outH, outW) at data (N, C, H, W)."""
        gradW, points = self.vars["W"].grad, grad.shape[2] * grad.shape[3]
        if self._biasInColumns():  # ∂W and ∂b from the products with col and its rows of ones
            products = matmul(self._groupedGrad(grad), self.col.transpose(0, 1, 3, 2))
            addParamGrads(products, gradW.reshape(self.outmaps, -1), self.vars["b"].grad)
            return
        if self.algorithm == "depthwise":
            addDepthwiseGradWeights(grad, data, self.window, gradW.reshape(self.outmaps, 1, *self.window.size))
        elif self._direct(data.shape, points) and (points >= DIRECT_WEIGHTS_FROM or self._inPlace(data.shape)):
            weights = gradW.reshape(self.outmaps, self.inmaps, *self.window.size)
            addDirectWeightGradient(data, grad, self.window, weights)
        elif self._isWide(grad.shape[0], points):
            gradW += matmul(self._wideGrad(grad), self.col.transpose(0, 2, 1)).reshape(self.W.shape)
        else:
            rows = xp.ascontiguousarray(grad).reshape(grad.shape[0], self.outmaps, -1)
            products = None if self.col is not None else self._columnProducts(rows, data, self.window, transposed=True)
            if products is not None:  # forward made its products image by image (col None): so does ∂Wᵀ
                summed = columnSums(products.reshape(products.shape[0], -1)).reshape(products.shape[1:])
                gradW.reshape(self.outmaps, -1)[...] += summed.T
            else:
                col = self.col if self.col is not None else self._wholeCol(data, rows.shape[2])
                addWeightProduct(self._groupedGrad(grad), col, gradW.reshape(self.groups, self.outmaps // self.groups,
                                                                             -1))
        if self.useBias:
            sumInto(xp.ascontiguousarray(grad), self.vars["b"].grad, axis=(0, 2, 3))
