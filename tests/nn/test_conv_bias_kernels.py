"""The kernels that let a convolution's products carry its bias on a GPU (minidl.nn.convbias): im2col with a row of
ones per group and the output preset to the bias, and the batch sum of the per-image products into ∂W and ∂b; every
path against float64 oracles written with explicit loops, special values drawn; and Conv2D with a bias taking them
on the simulated device with the same values as its CPU path's formula."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl import backend
from minidl.backend import toDevice, toHost
from minidl.nn import Conv2D
from minidl.nn.convbias import addParamGradsKer, im2colWithBiasKer, unwideBiasKer
from minidl.testing import arrays, checkGradients, checkKernel, floatDtypes


@st.composite
def im2colCases(draw):
    dtype = draw(floatDtypes())
    groups, groupMaps, outMaps = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    maps, outMaps = groups * groupMaps, groups * outMaps
    kh, kw, sy, sx = (draw(st.integers(1, 3)) for _ in range(4))
    ph, pw, dy, dx = draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h = draw(st.integers(max(1, dy * (kh - 1) + 1 - 2 * ph), 6))
    w = draw(st.integers(max(1, dx * (kw - 1) + 1 - 2 * pw), 6))
    outH, outW = (h + 2 * ph - dy * (kh - 1) - 1) // sy + 1, (w + 2 * pw - dx * (kw - 1) - 1) // sx + 1
    batch = draw(st.integers(1, 2))
    colValues, outValues = batch * groups * (groupMaps * kh * kw + 1) * outH * outW, batch * outMaps * outH * outW
    return dtype, [draw(arrays(dtype, (batch, maps, h, w))), draw(arrays(dtype, (outMaps,))), groups, maps, h, w,
                   kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, outMaps, colValues, outValues,
                   numpy.full(colValues, numpy.nan, dtype), numpy.full(outValues, numpy.nan, dtype)]


def im2colOracle(img, bias, groups, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, outMaps, colValues,
                 outValues, col, out):
    batch, groupMaps = img.shape[0], maps // groups
    expected = numpy.zeros((batch, groups, groupMaps * kh * kw + 1, outH, outW))
    for n, g, c, ky, kx, oy, ox in numpy.ndindex(batch, groups, groupMaps, kh, kw, outH, outW):
        y, x = oy * sy - ph + ky * dy, ox * sx - pw + kx * dx
        if 0 <= y < h and 0 <= x < w:
            expected[n, g, (c * kh + ky) * kw + kx, oy, ox] = img[n, g * groupMaps + c, y, x]
    expected[:, :, -1] = 1
    preset = numpy.broadcast_to(bias.reshape(1, outMaps, 1), (batch, outMaps, outH * outW))
    return [expected.reshape(-1), preset.reshape(-1)]


def test_im2col_with_bias_writes_the_windows_the_ones_and_the_preset_output():
    checkKernel(im2colWithBiasKer, im2colCases(), im2colOracle, nanPropagates=False,
                size=lambda args: max(args[17], args[18]))


@st.composite
def paramGradCases(draw):
    dtype = draw(floatDtypes())
    batch, outMaps, inner = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    values = outMaps * (inner + 1)
    return dtype, [draw(arrays(dtype, (batch * values,))), batch, inner, values,
                   draw(arrays(dtype, (outMaps * inner,))), draw(arrays(dtype, (outMaps,)))]


def paramGradOracle(products, batch, inner, values, gradW, gradB):
    sums = numpy.zeros((values // (inner + 1), inner + 1))
    for n in range(batch):
        sums += products[n * values:(n + 1) * values].reshape(-1, inner + 1)
    return [gradW + sums[:, :inner].reshape(-1), gradB + sums[:, inner]]


def test_the_batch_sum_adds_into_the_weight_and_bias_gradients():
    checkKernel(addParamGradsKer, paramGradCases(), paramGradOracle, size=lambda args: args[3])


@st.composite
def unwideCases(draw):
    dtype = draw(floatDtypes())
    batch, maps, points = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 40))
    rows, span = draw(st.integers(1, maps)), draw(st.integers(1, points))
    return dtype, [draw(arrays(dtype, (maps, batch * points))), draw(arrays(dtype, (maps,))), batch, maps, points,
                   rows, span, numpy.full((batch, maps, points), numpy.nan, dtype)]


def unwideOracle(product, bias, batch, maps, points, rows, span, out):
    expected = numpy.empty(out.shape)
    for n, o, p in numpy.ndindex(batch, maps, points):
        expected[n, o, p] = product[o, n * points + p] + bias[o]
    return [expected]


def test_a_product_over_the_batch_comes_back_in_nchw_order_with_the_bias_added():
    checkKernel(unwideBiasKer, unwideCases(), unwideOracle,
                size=lambda args: args[2] * -(-args[3] // args[5]) * -(-args[4] // args[6]))


@pytest.mark.skipif(backend.name != "simulated", reason="the GPU branch of Conv2D: runs on the simulated device")
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_with_a_bias_matches_its_formula_in_six_launches(groups):
    from minidl.backend.simulated import trace

    rng = numpy.random.default_rng(3)
    conv = Conv2D(4, 6, 3, stride=2, pad=1, groups=groups)
    conv.b[...] = toDevice(rng.standard_normal(6).astype(numpy.float32))
    data = rng.standard_normal((3, 4, 7, 5)).astype(numpy.float32)
    grad = rng.standard_normal((3, 6, 4, 3)).astype(numpy.float32)
    W, b = toHost(conv.W).astype(numpy.float64), toHost(conv.b).astype(numpy.float64)
    padded = numpy.pad(data.astype(numpy.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = numpy.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))[:, :, ::2, ::2]  # n c y x ky kx
    per, outPer = 4 // groups, 6 // groups
    expected = numpy.concatenate([numpy.einsum("ncyxij,ocij->noyx", windows[:, g * per:(g + 1) * per],
                                               W[g * outPer:(g + 1) * outPer]) for g in range(groups)], axis=1)
    expected += b.reshape(1, 6, 1, 1)
    wide = grad.astype(numpy.float64)
    gradW = numpy.concatenate([numpy.einsum("noyx,ncyxij->ocij", wide[:, g * outPer:(g + 1) * outPer],
                                            windows[:, g * per:(g + 1) * per]) for g in range(groups)])
    with trace.recording() as recorded:
        out = conv(toDevice(data))
        conv.backward(toDevice(grad))
    numpy.testing.assert_allclose(toHost(out), expected, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(toHost(conv.vars["W"].grad), gradW, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(toHost(conv.vars["b"].grad), wide.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)
    names = [launch.name for launch in recorded.launches]
    products = ["gemmStridedBatched"] * groups  # grouped weights over the images: a call per group
    assert names == (["minidl_im2col_with_bias", *products, *products, "minidl_col2im", "gemmStridedBatched",
                      "minidl_conv_add_param_grads"])


@pytest.mark.parametrize("batch", [3, 513])
def test_add_param_grads_sums_long_batches_in_parts_to_the_same_values(batch):
    from minidl.nn import convbias

    rng = numpy.random.default_rng(batch)
    products = rng.standard_normal((batch, 2, 3, 5)).astype(numpy.float32)
    gradW, gradB = rng.standard_normal((6, 4)).astype(numpy.float32), rng.standard_normal(6).astype(numpy.float32)
    deviceW, deviceB = toDevice(gradW), toDevice(gradB)
    convbias.addParamGrads(toDevice(products), deviceW, deviceB)
    sums = products.astype(numpy.float64).sum(axis=0).reshape(6, 5)
    numpy.testing.assert_allclose(toHost(deviceW), gradW + sums[:, :4], rtol=1e-6, atol=1e-6)
    numpy.testing.assert_allclose(toHost(deviceB), gradB + sums[:, 4], rtol=1e-6, atol=1e-6)


def launchNames(run):
    """The launches ``run`` makes on the simulated device (None on the CPU, which takes its own path)."""
    if backend.name != "simulated":
        run()
        return None
    from minidl.backend.simulated import trace

    with trace.recording() as recorded:
        run()
    return [launch.name for launch in recorded.launches]


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_with_a_bias_has_float64_gradients_through_its_products(groups):
    """Central differences in float64; on the simulated device the passes go through this module's kernels."""
    rng = numpy.random.default_rng(groups)
    conv = Conv2D(4, 6, 3, stride=2, pad=1, groups=groups, dtype=numpy.float64)
    conv.b[...] = toDevice(rng.standard_normal(6))
    data = toDevice(rng.standard_normal((2, 4, 5, 4)))
    names = launchNames(lambda: checkGradients(conv, data))
    assert names is None or {"minidl_im2col_with_bias", "minidl_conv_add_param_grads"} <= set(names)


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_with_a_bias_exports_to_onnx_with_its_outputs(tmp_path, groups):
    """The exported Conv2D run in ONNX Runtime gives the outputs minidl computed, on the simulated device through
    this module's kernels."""
    pytest.importorskip("onnxruntime", reason="the ONNX test needs onnxruntime (the test extra)")
    from tests.onnx.onnxcheck import checkExport

    rng = numpy.random.default_rng(groups)
    conv = Conv2D(4, 6, 3, stride=2, pad=1, groups=groups)
    conv.b[...] = toDevice(rng.standard_normal(6).astype(numpy.float32))
    sample = rng.standard_normal((1, 4, 7, 5)).astype(numpy.float32)
    runInput = rng.standard_normal((3, 4, 7, 5)).astype(numpy.float32)
    names = launchNames(lambda: checkExport(conv, tmp_path / "conv.onnx", sample, runInput))
    assert names is None or "minidl_im2col_with_bias" in names
