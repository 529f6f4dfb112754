"""Launches per layer per training step on the simulated device (tests/layerlaunches.py, in a process of its own
when the suite runs on NumPy): BatchNorm2D takes four (a Reduction of each map's mean and variance and the forward;
a Reduction of the gradient sums and the backward), or six where a block of threads per map would leave a large
tensor too few threads (64 maps of 32x32: partial sums, their total and the fused forward; the same three backward),
Conv2D six (im2col and a product; ∂x by a product and col2im; ∂W by a product per image and one reduction into
W.grad), with a bias too (im2col adds a row of ones to col and presets the output to the bias, the products carry
the rest: minidl.nn.convbias), a 1x1 convolution four."""

import pytest

from minidl import backend
from tests.simulatedprocess import simulatedCounts

BATCHNORM = ["minidl_batchnorm_stats", "minidl_batchnorm_forward", "minidl_batchnorm_grad_sums",
             "minidl_batchnorm_backward"]
BATCHNORM_PARTIALS = ["minidl_batchnorm_partials", "sum", "minidl_batchnorm_forward", "minidl_batchnorm_partials",
                      "sum", "minidl_batchnorm_backward"]
GEMM = "gemmStridedBatched"  # minidl.backend.products: one cuBLAS launch a product, transposed operands included
CONV = ["minidl_im2col", GEMM, GEMM, "minidl_col2im", GEMM, "minidl_sum_into"]
EXPECTED = {
    "batchnorm2d 32x64x32x32": BATCHNORM_PARTIALS,  # 2^21 values, 64 maps: a block each would be 2^15 threads
    "batchnorm2d 32x512x4x4": BATCHNORM,
    "batchnorm2d 5x3x7x9": BATCHNORM,
    "conv2d 3x3 pad 1 64->64 at 32x32": CONV,
    "conv2d 3x3 stride 2 64->128 at 32x32": CONV,
    "conv2d 1x1 stride 2 64->128 at 32x32": CONV,
    "conv2d 3x3 pad 1 256->256 at 8x8": CONV,
    "conv2d 3x3 pad 1 512->512 at 4x4": CONV,
    "conv2d 1x1 64->32 at 8x8": [GEMM, GEMM, GEMM, "minidl_sum_into"],  # the input is its own col
    "conv2d 5x5 3->6 at 28x28": CONV,
    "conv2d 3x3 pad 1 16->16 at 8x8 with bias": ["minidl_im2col_with_bias", GEMM, GEMM, "minidl_col2im", GEMM,
                                                  "minidl_conv_add_param_grads"],  # the products carry the bias
}


@pytest.fixture(scope="module")
def counted():
    if backend.name == "simulated":
        from tests import layerlaunches

        return {name: layerlaunches.launches(*layer) for name, layer in layerlaunches.LAYERS.items()}
    return simulatedCounts("tests.layerlaunches", timeout=600)


@pytest.mark.parametrize("layer", sorted(EXPECTED))
def test_a_layer_step_makes_its_launches(counted, layer):
    assert counted[layer] == EXPECTED[layer]


def test_batchnorm_and_conv2d_take_at_most_six_launches_a_step(counted):
    for layer, names in counted.items():
        assert len(names) <= 6, (layer, names)
