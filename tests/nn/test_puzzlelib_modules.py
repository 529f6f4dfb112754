"""Slice, Tile, Replicate, Sum, MulAddConst, MoveAxis, DepthConcat, ToList, Glue, GroupLinear and Parallel:
forward against float64 NumPy formulas, gradients against central differences (float64), PyTorch where it has
the operation, bad input refused before anything changes, and each one rebuilt from its file alone."""

import numpy
import pytest

import minidl
from minidl.backend import toDevice, toHost
from minidl.errors import CheckpointError, ModuleError
from minidl.nn import (
    Activation,
    DepthConcat,
    Glue,
    Graph,
    GroupLinear,
    Identity,
    Linear,
    MoveAxis,
    MulAddConst,
    Parallel,
    Replicate,
    Sequential,
    Slice,
    Split,
    Sum,
    Tile,
    ToList,
    register,
    tanh,
)
from minidl.testing import checkGradients
from tests.optional import importTorch

F64 = numpy.float64


def rand(*shape, seed=0):
    return numpy.random.default_rng(seed + sum(shape)).standard_normal(shape)


def dev(array, dtype=F64):
    return toDevice(numpy.asarray(array, dtype=dtype))


def host(value):
    return [host(item) for item in value] if isinstance(value, list) else toHost(value)


# forward against NumPy, gradients against central differences


CASES = {  # name: (module builder, host inputs, NumPy forward)
    "slice": (lambda: Slice()[:, 1:-1, ::2], [rand(2, 5, 6)], lambda x: x[:, 1:-1, ::2]),
    "slice-negative-step": (lambda: Slice((slice(None), slice(None, None, -2))), [rand(3, 5)],
                            lambda x: x[:, ::-2]),
    "tile": (lambda: Tile(axis=1, times=3), [rand(2, 3, 2)], lambda x: numpy.concatenate([x] * 3, axis=1)),
    "tile-batch": (lambda: Tile(axis=0, times=2), [rand(2, 3)], lambda x: numpy.concatenate([x, x], axis=0)),
    "replicate": (lambda: Replicate(3), [rand(2, 4)], lambda x: [x, x, x]),
    "sum": (lambda: Sum(axis=1, useWeights=False), [rand(3, 4, 5)], lambda x: x.sum(axis=1)),
    "sum-weighted": (lambda: Sum(axis=1), [rand(3, 4, 5), rand(3, 4, seed=1)],
                     lambda x, v: (x * v[:, :, None]).sum(axis=1)),
    "sum-weighted-last": (lambda: Sum(axis=2), [rand(2, 3, 4), rand(2, 3, 4, seed=2)],
                          lambda x, v: (x * v).sum(axis=2)),
    "muladdconst": (lambda: MulAddConst(a=-2.5, b=0.75), [rand(3, 4)], lambda x: -2.5 * x + 0.75),
    "moveaxis": (lambda: MoveAxis(1, 3), [rand(2, 3, 4, 5)], lambda x: numpy.moveaxis(x, 1, 3)),
    "moveaxis-back": (lambda: MoveAxis(-1, 0), [rand(2, 3, 4)], lambda x: numpy.moveaxis(x, -1, 0)),
    "depthconcat": (lambda: DepthConcat(), [rand(2, 3, 2, 2), rand(2, 2, 6, 6), rand(2, 1, 5, 3)],
                    lambda a, b, c: depthConcat([a, b, c])),
    "tolist": (lambda: ToList(), [[rand(2, 3), [rand(3, 1), rand(1, 2)]]], lambda nested: [nested[0], *nested[1]]),
    "grouplinear": (lambda: GroupLinear(3, 4, 2, dtype=F64), [rand(5, 3, 4)],
                    None),
    "grouplinear-one-input": (lambda: GroupLinear(3, 4, 2, inmode="one", dtype=F64), [rand(5, 1, 4)], None),
    "grouplinear-one-weight": (lambda: GroupLinear(None, 4, 2, wmode="one", dtype=F64), [rand(5, 6, 4)], None),
    "grouplinear-batch-second": (lambda: GroupLinear(3, 4, 2, batchDim=1, dtype=F64), [rand(3, 5, 4)], None),
    "parallel": (lambda: Parallel(Linear(3, 2, dtype=F64), Activation(tanh), Identity()),
                 [rand(4, 3), rand(4, 2), rand(2, 2)], None),
}


def depthConcat(inputs):
    height, width = max(x.shape[2] for x in inputs), max(x.shape[3] for x in inputs)
    out = numpy.zeros((inputs[0].shape[0], sum(x.shape[1] for x in inputs), height, width))
    channel = 0
    for x in inputs:
        top, left = (height - x.shape[2]) // 2, (width - x.shape[3]) // 2
        out[:, channel:channel + x.shape[1], top:top + x.shape[2], left:left + x.shape[3]] = x
        channel += x.shape[1]
    return out


def groupLinear(module, x):
    """The float64 loop over groups of GroupLinear's docstring."""
    W, b = toHost(module.W), toHost(module.b)
    groupsFirst = x if module.batchDim == 1 else x.transpose(1, 0, 2)
    groups = W.shape[0] if module.inmode == "one" else groupsFirst.shape[0]
    out = numpy.stack([groupsFirst[0 if module.inmode == "one" else g] @ W[g if W.shape[0] > 1 else 0]
                       + b[g if b.shape[0] > 1 else 0] for g in range(groups)])
    return out if module.batchDim == 1 else out.transpose(1, 0, 2)


def deviceInputs(inputs):
    def convert(value):
        return [convert(item) for item in value] if isinstance(value, list) else dev(value)

    converted = [convert(x) for x in inputs]
    return converted[0] if len(converted) == 1 else converted


def moduleAndInput(name):
    build, inputs, _ = CASES[name]
    module = build()
    for var in module.getVarTable().values():  # biases off zero, so that a wrong bias path shows
        var.set(var.data + dev(rand(*var.data.shape, seed=7)))
    return module, inputs, deviceInputs(inputs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_the_formula(name):
    module, inputs, data = moduleAndInput(name)
    expected = CASES[name][2]
    if name.startswith("grouplinear"):
        expected = lambda x: groupLinear(module, x)  # noqa: E731
    if name == "parallel":
        expected = lambda a, b, c: [a @ toHost(module[0].W) + toHost(module[0].b), numpy.tanh(b), c]  # noqa: E731
    out = host(module(data))
    want = expected(*inputs)
    if isinstance(want, list):
        assert len(out) == len(want)
        for got, item in zip(out, want):
            numpy.testing.assert_allclose(got, item, rtol=1e-12, atol=1e-12)
    else:
        numpy.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(set(CASES) - {"tolist", "parallel", "replicate"}))
def test_gradients_match_central_differences(name):
    module, _, data = moduleAndInput(name)
    checkGradients(module, data)


def test_gradients_of_list_output_modules():
    """Replicate, ToList and Parallel return lists: checked inside a Graph that sums them into one output."""
    from minidl.nn import Add, Concat

    inp = Identity().node()
    copies = Replicate(3).node(inp)
    scaled = MulAddConst(a=2.0).node(copies[1])
    net = Graph(inputs=inp, outputs=Add().node(copies[0], scaled, copies[2]))
    checkGradients(net, dev(rand(3, 4)))

    a, b = Identity().node(), Identity().node()
    flat = ToList().node(Replicate(2).node(a), b)
    net = Graph(inputs=[a, b], outputs=Concat(axis=1).node(flat[0], flat[1], flat[2]))
    checkGradients(net, [dev(rand(3, 2)), dev(rand(3, 4))])

    a, b = Identity().node(), Identity().node()
    shared = Linear(3, 3, dtype=F64)
    pair = Parallel(shared, Sequential(Activation(tanh), shared)).node(a, b)
    net = Graph(inputs=[a, b], outputs=Concat(axis=1).node(pair[0], pair[1]))
    checkGradients(net, [dev(rand(2, 3)), dev(rand(2, 3, seed=1))])


def test_tile_moveaxis_sum_slice_match_pytorch():
    torch = importTorch()
    x = rand(2, 3, 4, 5)
    grad = rand(2, 9, 4, 5, seed=3)
    cases = [
        (Tile(axis=1, times=3), lambda t: t.repeat(1, 3, 1, 1), grad),
        (MoveAxis(1, 3), lambda t: torch.movedim(t, 1, 3), rand(2, 4, 5, 3, seed=4)),
        (Sum(axis=2, useWeights=False), lambda t: t.sum(dim=2), rand(2, 3, 5, seed=5)),
        (Slice()[:, 1:, 1:3], lambda t: t[:, 1:, 1:3], rand(2, 2, 2, 5, seed=6)),
    ]
    for module, function, outGrad in cases:
        tensor = torch.tensor(x, requires_grad=True)
        expected = function(tensor)
        expected.backward(torch.tensor(outGrad))
        numpy.testing.assert_allclose(toHost(module(dev(x))), expected.detach().numpy(), rtol=1e-12)
        numpy.testing.assert_allclose(toHost(module.backward(dev(outGrad))), tensor.grad.numpy(), rtol=1e-12)


def test_glue_runs_the_users_functions_and_trains_its_modules(tmp_path):
    def forward(data, modules):
        first, second = modules["split"](data[1])
        return [data[0] + modules["scale"](first), second]

    def backward(grad, modules):
        modules["scale"].backward(grad[0])
        return [grad[0], modules["split"].backward([modules["scale"].grad, grad[1]])]

    glue = Glue(forward, backward, {"split": Split(1, (2, 3)), "scale": Linear(2, 2, dtype=F64)})
    assert list(glue.getVarTable()) == ["scale.W", "scale.b"]
    data = [dev(rand(4, 2)), dev(rand(4, 5))]
    out = host(glue(data))
    W, b = toHost(glue.getVar("scale.W").data), toHost(glue.getVar("scale.b").data)
    numpy.testing.assert_allclose(out[0], rand(4, 2) + rand(4, 5)[:, :2] @ W + b, rtol=1e-12)
    checkGradients(glue, data)

    Sequential(glue).save(tmp_path / "glue")
    with pytest.raises(CheckpointError, match="register a function"):
        minidl.load(tmp_path / "glue")
    register(forward, "tests.glueForward")
    register(backward, "tests.glueBackward")
    Sequential(glue).save(tmp_path / "glue")
    loaded = minidl.load(tmp_path / "glue")
    for got, want in zip(host(loaded(data)), host(glue(data))):
        numpy.testing.assert_array_equal(got, want)


def test_a_glue_used_at_two_places_gets_both_uses_gradients():
    """A Glue kept no caches of its modules: at its second place the modules' caches replaced the first's, whose
    backward then read them (wrong gradients, no error)."""

    def forward(data, modules):
        return modules["scale"](data)

    def backward(grad, modules):
        return modules["scale"].backward(grad)

    glue = Glue(forward, backward, {"scale": Linear(3, 3, dtype=F64)})
    inp = Identity().node()
    net = Graph(inputs=inp, outputs=glue.node(Activation(tanh).node(glue.node(inp))))
    checkGradients(net, dev(rand(4, 3)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_module_round_trips_through_its_file(tmp_path, name):
    module, _, data = moduleAndInput(name)
    module.save(tmp_path / "m")
    loaded = minidl.load(tmp_path / "m")
    assert type(loaded) is type(module)
    got, want = host(loaded(data)), host(module(data))
    for gotItem, wantItem in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
        numpy.testing.assert_array_equal(gotItem, wantItem)


@pytest.mark.parametrize("build, data, match", [
    (lambda: Slice()[:, 5:], [rand(2, 3)], "leave nothing"),
    (lambda: Slice(), [rand(2, 3)], "no slices set"),
    (lambda: Tile(axis=3, times=2), [rand(2, 3)], "out of range"),
    (lambda: Sum(axis=1), [[rand(2, 3, 4), rand(2, 4)]], r"weights must have shape \(2, 3\)"),
    (lambda: Sum(axis=1, useWeights=False), [rand(3)], "more than 1 axes"),
    (lambda: MoveAxis(0, 4), [rand(2, 3)], "out of range"),
    (lambda: DepthConcat(), [[rand(2, 3, 2, 2), rand(3, 3, 2, 2)]], "one batch size"),
    (lambda: GroupLinear(3, 4, 2, dtype=F64), [rand(5, 2, 4)], "with 3 groups"),
    (lambda: Parallel(Identity(), Identity()), [[rand(2, 3)]], "list of 2 inputs"),
    (lambda: ToList(), [[rand(2), []]], "empty list"),
])
def test_bad_input_is_refused_before_anything_changes(build, data, match):
    module = build()
    before = {name: toHost(var.data).copy() for name, var in module.getVarTable().items()}
    with pytest.raises(ModuleError, match=match):
        module(deviceInputs(data))
    assert module.data is None
    for name, var in module.getVarTable().items():
        numpy.testing.assert_array_equal(toHost(var.data), before[name])


@pytest.mark.parametrize("build, match", [
    (lambda: Slice((slice(0, 2, 0),)), "step of 0"),
    (lambda: Tile(1, 0), "Tile times"),
    (lambda: Replicate(1), "at least 2"),
    (lambda: MoveAxis(2, 2), "to itself"),
    (lambda: GroupLinear(None, 3, 2), "wmode='one'"),
    (lambda: GroupLinear(2, 3, 2, inmode="two"), "'full' or 'one'"),
    (lambda: Glue(None, None), "must be a function"),
    (lambda: Glue(print, print, {"fc.1": Identity()}), "may not be named 'fc.1'"),
    (lambda: Parallel(Identity(), "x"), "append a Module"),
])
def test_bad_arguments_are_refused(build, match):
    with pytest.raises(ModuleError, match=match):
        build()
