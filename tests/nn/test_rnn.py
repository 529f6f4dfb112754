"""RNN: float64 gradient checks in every mode and direction (two layers, initial states), PyTorch's numbers
for the same weights, truncated backpropagation through time, dropout between layers, the units per element of
its step kernels (but the lstm's, whose steps run fused on the CPU), bad input."""

import numpy
import pytest

from minidl.backend import isGpu, toDevice, toHost
from minidl.backend.kernelrecord import recordingKernels
from minidl.backend.products import matmul
from minidl.errors import ModuleError
from minidl.nn import RNN, rnn
from minidl.nn.lstmsteps import fused
from minidl.testing import checkGradients as checkModuleGradients
from tests.optional import importTorch

rng = numpy.random.default_rng(5)
MODES = ["lstm", "gru", "relu", "tanh"]


def data(*shape):
    return toDevice(rng.standard_normal(shape))


def withStates(module, x):
    shape = (module.layers * module.dirs, x.shape[1], module.hsize)
    return [x] + [data(*shape) for _ in range(module.stateCount())]


@pytest.mark.parametrize("direction", ["uni", "bi"])
@pytest.mark.parametrize("mode", MODES)
def test_gradients_two_layers_with_initial_states(mode, direction):
    module = RNN(2, 3, layers=2, mode=mode, direction=direction, getSequences=True, dtype=numpy.float64)
    checkModuleGradients(module, withStates(module, data(3, 2, 2)))


@pytest.mark.parametrize("direction", ["uni", "bi"])
@pytest.mark.parametrize("mode", MODES)
def test_gradients_of_the_final_states(mode, direction):
    checkModuleGradients(RNN(2, 3, mode=mode, direction=direction, dtype=numpy.float64), data(4, 2, 2))


@pytest.mark.parametrize("direction", ["uni", "bi"])
@pytest.mark.parametrize("mode", MODES)
def test_matches_pytorch_with_the_same_weights(mode, direction):
    torch = importTorch()
    module = RNN(3, 4, layers=2, mode=mode, direction=direction, getSequences=True, dtype=numpy.float64)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(mode, torch.nn.RNN)
    extra = {} if mode in ("lstm", "gru") else {"nonlinearity": mode}
    reference = cls(3, 4, num_layers=2, bidirectional=direction == "bi", dtype=torch.float64, **extra)
    reference.load_state_dict({name: torch.from_numpy(toHost(var.data)) for name, var in module.vars.items()})
    inputs = withStates(module, data(5, 2, 3))
    out = module(inputs)
    hostInputs = [torch.from_numpy(toHost(array)) for array in inputs]
    expected, states = reference(hostInputs[0], tuple(hostInputs[1:]) if mode == "lstm" else hostInputs[1])
    numpy.testing.assert_allclose(toHost(out), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    expectedH = states[0] if mode == "lstm" else states
    numpy.testing.assert_allclose(toHost(module.hn), expectedH.detach().numpy(), rtol=1e-10, atol=1e-12)
    if mode == "lstm":
        numpy.testing.assert_allclose(toHost(module.cn), states[1].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_final_output_is_the_last_forward_and_first_backward_state():
    module = RNN(3, 4, direction="bi", dtype=numpy.float64)
    x = data(5, 2, 3)
    final = toHost(module(x))
    sequences = toHost(_sequences(module, x))
    numpy.testing.assert_allclose(final, numpy.concatenate([sequences[-1, :, :4], sequences[0, :, 4:]], axis=1))


def _sequences(module, x):
    module.getSequences = True
    try:
        return module(x)
    finally:
        module.getSequences = False


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_truncated_bptt_chunks_continue_the_whole_sequence(mode):
    module = RNN(3, 4, layers=2, mode=mode, getSequences=True, dtype=numpy.float64)
    x = data(6, 2, 3)
    whole = toHost(module(x))
    first = toHost(module(x[:4]))
    states = [module.hn, module.cn] if mode == "lstm" else [module.hn]
    second = toHost(module([x[4:].copy(), *states]))
    numpy.testing.assert_allclose(numpy.concatenate([first, second]), whole, rtol=1e-12, atol=1e-14)


def test_dropout_between_layers_in_train_mode_only():
    module = RNN(3, 4, layers=2, dropout=0.5, getSequences=True, dtype=numpy.float64)
    x = data(4, 2, 3)
    evalOut = toHost(module.evalMode()(x))
    plain = RNN(3, 4, layers=2, getSequences=True, dtype=numpy.float64)
    for name, var in plain.vars.items():
        var.data[...] = module.vars[name].data
    numpy.testing.assert_array_equal(evalOut, toHost(plain(x)))
    trainOut = toHost(module.trainMode()(x))
    assert not numpy.allclose(trainOut, evalOut)
    grad = module.backward(data(*trainOut.shape))  # the same mask applies to the gradient
    assert grad.shape == x.shape and numpy.isfinite(toHost(grad)).all()


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_backward_without_updgrad_makes_the_same_weight_gradients_and_no_input_product(mode, monkeypatch):
    """A training step's backward (updGrad=False) skips the first layer's ∂input product, one matrix product per
    direction fewer, and adds the same gradients to every weight."""
    module = RNN(3, 4, layers=2, mode=mode, direction="bi", dtype=numpy.float64)
    x, grad = data(5, 2, 3), data(2, 8)
    module(x)
    full = module.backward(grad)
    expected = {name: toHost(var.grad).copy() for name, var in module.vars.items()}
    products = []
    monkeypatch.setattr(rnn, "matmul", lambda *args, **kwargs: products.append(args[0].shape) or matmul(*args,
                                                                                                         **kwargs))
    for var in module.vars.values():
        var.grad[...] = 0
    assert module.backward(grad, updGrad=False) is None
    for name, var in module.vars.items():
        numpy.testing.assert_array_equal(toHost(var.grad), expected[name])
    without = len(products)
    assert module.backward(grad).shape == full.shape == x.shape
    assert len(products) - without == without + 2


def test_weights_have_pytorch_names_and_shapes():
    module = RNN(5, 7, layers=2, mode="gru", direction="bi")
    assert module.vars["weight_ih_l0"].data.shape == (21, 5)
    assert module.vars["weight_ih_l1_reverse"].data.shape == (21, 14)
    assert module.vars["weight_hh_l1"].data.shape == (21, 7)
    assert module.vars["bias_hh_l0_reverse"].data.shape == (21,)
    assert len(module.vars) == 16


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_step_kernels_take_a_row_per_element_on_the_cpu_and_a_unit_on_a_gpu(mode):
    module = RNN(3, 8, mode=mode, direction="bi", dtype=numpy.float32)
    x = toDevice(rng.standard_normal((4, 2, 3)).astype(numpy.float32))
    with recordingKernels() as calls:
        module.backward(module(x))
    steps = [call for call in calls if call.kernel.name.startswith(f"minidl_{mode}_")]
    if mode == "lstm" and fused(numpy.float32, 2, 8):  # every step in one call a direction (test_lstmsteps.py)
        assert steps == []
        return
    assert len(steps) == 2 * 2 * 4  # forward and backward, both directions, 4 steps
    span = 1 if isGpu else 8
    for call in steps:
        hsize, given = (arg for arg in call.args if isinstance(arg, int))
        assert (hsize, given, call.size) == (8, span, 2 * 8 // span)


@pytest.mark.parametrize("make, call", [
    (lambda: RNN(3, 4, mode="lstmx"), None),
    (lambda: RNN(3, 0), None),
    (lambda: RNN(3, 4, direction="both"), None),
    (lambda: RNN(3, 4, dropout=1.0), None),
    (lambda: RNN(3, 4, dropout=None), None),  # these three raised TypeError
    (lambda: RNN(3, 4, mode=["lstm"]), None),
    (lambda: RNN(3, 4, direction=["bi"]), None),
    (lambda: RNN(3, 4, dtype=numpy.float16), None),
    (lambda: RNN(3, 4), lambda m: m(toDevice(numpy.zeros((5, 2, 4), numpy.float32)))),
    (lambda: RNN(3, 4), lambda m: m(toDevice(numpy.zeros((5, 3), numpy.float32)))),
    (lambda: RNN(3, 4), lambda m: m([toDevice(numpy.zeros((5, 2, 3), numpy.float32))] * 2)),
    (lambda: RNN(3, 4, mode="gru"),
     lambda m: m([toDevice(numpy.zeros((5, 2, 3), numpy.float32)), toDevice(numpy.zeros((1, 3, 4), numpy.float32))])),
])
def test_bad_arguments_and_inputs_are_refused(make, call):
    with pytest.raises(ModuleError):
        module = make()
        call(module)
