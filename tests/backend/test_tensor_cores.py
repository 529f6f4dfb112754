"""minidl.backend.allowTF32: off by default; on the simulated device each product's trace entry says the math it ran
in (TF32 only when allowed, float16 on tensor cores with float32 sums) and the GPU model times it accordingly; on
the CPU the flag changes no bit."""

import numpy
import pytest

from minidl import BackendError, backend
from minidl.backend import allowTF32, tf32Allowed, toDevice, toHost, xp
from minidl.nn import Linear

rng = numpy.random.default_rng(5)


@pytest.fixture(autouse=True)
def exactByDefault():
    assert not tf32Allowed()  # the default, and every test leaves it so
    yield
    allowTF32(False)


def test_the_flag_takes_only_a_bool():
    with pytest.raises(BackendError, match="True or False, got 1"):
        allowTF32(1)
    assert not tf32Allowed()


def productMaths(run):
    from minidl.backend.simulated import trace

    with trace.recording() as recorded:
        run()
    return [launch.math for launch in recorded.products]


@pytest.mark.skipif(backend.name != "simulated", reason="the trace is the simulated device's")
def test_products_say_tf32_only_when_allowed():
    a32, b32 = (toDevice(rng.standard_normal((8, 8)), numpy.float32) for _ in range(2))
    a16, b16 = a32.astype(numpy.float16), b32.astype(numpy.float16)
    a64 = a32.astype(numpy.float64)
    layer = Linear(8, 3)

    def products():
        xp.matmul(a32, b32)
        a32 @ b32
        xp.dot(a32, b32)
        xp.matmul(a16, b16)
        xp.matmul(a64, a64)
        layer(a32)

    assert productMaths(products) == ["fp32", "fp32", "fp32", "fp16", "fp64", "fp32"]
    allowTF32(True)
    assert tf32Allowed()
    assert productMaths(products) == ["tf32", "tf32", "tf32", "fp16", "fp64", "tf32"]
    allowTF32(False)
    assert productMaths(products) == ["fp32", "fp32", "fp32", "fp16", "fp64", "fp32"]


@pytest.mark.skipif(backend.name != "simulated", reason="the trace is the simulated device's")
def test_the_gpu_model_times_tf32_products_on_tensor_cores():
    from minidl.backend.simulated import gpumodel, trace

    a = toDevice(rng.standard_normal((1024, 1024)), numpy.float32)
    h100 = gpumodel.GPUS["h100"]

    def seconds():
        with trace.recording() as recorded:
            xp.matmul(a, a)
        (product,) = recorded.products
        return gpumodel.deviceSeconds(product, h100)

    exact = seconds()
    allowTF32(True)
    fast = seconds()
    flops = 2 * 1024**3
    assert exact == pytest.approx(h100.latency + flops / h100.fp32)
    assert fast == pytest.approx(h100.latency + max(3 * 1024**2 * 4 / h100.bandwidth, flops / h100.tensor))


@pytest.mark.skipif(backend.isGpu, reason="on a device the flag changes the products (tests above)")
def test_on_the_cpu_the_flag_changes_nothing():
    a, b = rng.standard_normal((16, 16)).astype(numpy.float32), rng.standard_normal((16, 16)).astype(numpy.float32)
    exact = toHost(xp.matmul(toDevice(a), toDevice(b)))
    allowTF32(True)
    assert tf32Allowed()
    numpy.testing.assert_array_equal(toHost(xp.matmul(toDevice(a), toDevice(b))), exact)
    numpy.testing.assert_array_equal(exact, a @ b)  # float32 products, not TF32-rounded inputs
