"""PRelu, CrossMapLRN and SpatialTf against PyTorch's PReLU, LocalResponseNorm and affine_grid + grid_sample:
outputs and every gradient, in float64."""

import warnings

import numpy
import pytest

from minidl.backend import toDevice, toHost
from minidl.nn import CrossMapLRN, PRelu, SpatialTf
from tests.optional import importTorch

torch = importTorch()


def rand(*shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape)


def compare(ours, theirs):
    numpy.testing.assert_allclose(toHost(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sharedMaps", [False, True])
def test_prelu_against_pytorch(sharedMaps):
    x, grad = rand(3, 4, 2, 5), rand(3, 4, 2, 5, seed=1)
    module = PRelu(4, sharedMaps=sharedMaps, dtype=numpy.float64)
    slopes = numpy.linspace(-0.3, 0.6, module.slopes.size)
    module.vars["slopes"].data[...] = toDevice(slopes)
    reference = torch.nn.PReLU(1 if sharedMaps else 4, dtype=torch.float64)
    reference.weight.data = torch.tensor(slopes)
    tensor = torch.tensor(x, requires_grad=True)
    expected = reference(tensor)
    expected.backward(torch.tensor(grad))
    compare(module(toDevice(x)), expected)
    compare(module.backward(toDevice(grad)), tensor.grad)
    compare(module.vars["slopes"].grad, reference.weight.grad)
    assert torch.nn.PReLU().weight.item() == pytest.approx(float(toHost(PRelu(1).slopes)[0]))  # both start at 0.25


@pytest.mark.parametrize("N, alpha, beta, K, shape", [(5, 1e-4, 0.75, 2.0, (2, 7, 3, 3)), (3, 0.9, 0.6, 1.0, (2, 5, 4)),
                                                       (1, 0.5, 1.2, 1.5, (1, 3, 2, 2, 2))])
def test_cross_map_lrn_against_local_response_norm(N, alpha, beta, K, shape):
    x, grad = rand(*shape) * 3, rand(*shape, seed=1)
    module = CrossMapLRN(N, alpha, beta, K)
    tensor = torch.tensor(x, requires_grad=True)
    expected = torch.nn.LocalResponseNorm(N, alpha, beta, K)(tensor)
    expected.backward(torch.tensor(grad))
    compare(module(toDevice(x)), expected)
    compare(module.backward(toDevice(grad)), tensor.grad)


@pytest.mark.parametrize("alignCorners", [False, True])
@pytest.mark.parametrize("outShape", [None, (6, 3), (1, 1)])
def test_spatial_tf_against_affine_grid_and_grid_sample(alignCorners, outShape):
    x = rand(2, 3, 5, 4)
    theta = numpy.array([[[1.1, 0.3, 0.2], [-0.2, 0.8, -0.1]], [[0.7, -0.4, -0.3], [0.5, 1.4, 0.25]]])
    height, width = outShape or (5, 4)
    grad = rand(2, 3, height, width, seed=1)
    module = SpatialTf(outShape, alignCorners=alignCorners)
    data, transform = torch.tensor(x, requires_grad=True), torch.tensor(theta, requires_grad=True)
    with warnings.catch_warnings():  # PyTorch warns that unit-size grids changed in 1.3 (to the centre, 0)
        warnings.simplefilter("ignore", UserWarning)
        grid = torch.nn.functional.affine_grid(transform, [2, 3, height, width], align_corners=alignCorners)
    expected = torch.nn.functional.grid_sample(data, grid, mode="bilinear", padding_mode="zeros",
                                               align_corners=alignCorners)
    expected.backward(torch.tensor(grad))
    compare(module([toDevice(x), toDevice(theta)]), expected)
    gradX, gradTheta = module.backward(toDevice(grad))
    compare(gradX, data.grad)
    compare(gradTheta, transform.grad)
