"""The optimizer family's kernels (direct and master), driven by each optimizer's own ``hyperValues`` over several
steps: the CPU path against the paper's formula in float64, other paths against the CPU path (SGD and AdaGrad:
test_optimizer_kernels).

Each oracle is written in the paper's own variables. The kernels take their coefficients in the compute type
(float32 for float16 and float32 parameters, float64 for float64 ones), so an oracle rounds the same values the
same way (``rnd``): the hyperparameters, ``1 − beta`` as the kernel computes it, and for Adam the bias-corrected
step size and root the host hands the kernel. In float64 nothing is rounded but by float64 arithmetic.
"""

import math

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.backend import isDeviceArray, toHost
from minidl.optim import SGD, SMORMS3, AdaDelta, AdaGrad, Adam, AdamW, MomentumSGD, NesterovSGD, RMSProp, RMSPropGraves
from minidl.optim.state import computeType
from minidl.testing import arrays, assertMatches, floatDtypes, runPath, shapes
from tests.kernellegs import devicePath

STEPS = 3


def runNumpy(kernel, args):
    """The NumPy reference's outputs on copies of args."""
    return runPath("numpy", kernel, args)


def momentumOracle(param, grads, learnRate, momRate, rnd=float):
    """Classical momentum (Sutskever et al. 2013, eq. 1-2): v ← μv − ε∇f(θ), θ ← θ + v; the kernel keeps −v."""
    v = numpy.zeros_like(param)
    for grad in grads:
        v = momRate * v - learnRate * grad
        param = param + v
    return {"param": param, "mom": -v}


def nesterovOracle(param, grads, learnRate, momRate, rnd=float):
    """Nesterov (Sutskever et al. 2013, eq. 3-4): v ← μv − ε∇f(θ + μv), θ ← θ + v. The kernel stores the
    look-ahead point θ + μv as its parameters, where the gradients are taken, and −v as mom."""
    theta, v = param, numpy.zeros_like(param)
    for grad in grads:  # grad = ∇f at the stored parameters θ + μv
        v = momRate * v - learnRate * grad
        theta = theta + v
    return {"param": theta + momRate * v, "mom": -v}


def adadeltaOracle(param, grads, rho, epsilon, learnRate=1.0, rnd=float):
    """Zeiler 2012, Algorithm 1, with RMS[y] = sqrt(E[y²] + ε)."""
    eg2, edx2 = numpy.zeros_like(param), numpy.zeros_like(param)
    for grad in grads:
        eg2 = rho * eg2 + rnd(1 - rho) * grad**2
        dx = -numpy.sqrt(edx2 + epsilon) / numpy.sqrt(eg2 + epsilon) * grad
        edx2 = rho * edx2 + rnd(1 - rho) * dx**2
        param = param + learnRate * dx
    return {"param": param, "msg": eg2, "msdx": edx2}


def rmspropOracle(param, grads, learnRate, factor, epsilon, rnd=float):
    ms = numpy.zeros_like(param)
    for grad in grads:
        ms = factor * ms + rnd(1 - factor) * grad**2
        param = param - learnRate * grad / (numpy.sqrt(ms) + epsilon)
    return {"param": param, "ms": ms}


def gravesOracle(param, grads, learnRate, alpha, momRate, epsilon, rnd=float):
    """Graves 2013, eq. 38-41: n, g running means of ε² and ε, Δ ← ℶΔ − ℷε/sqrt(n − g² + ℸ), w ← w + Δ."""
    n, g, delta = numpy.zeros_like(param), numpy.zeros_like(param), numpy.zeros_like(param)
    for grad in grads:
        n = alpha * n + rnd(1 - alpha) * grad**2
        g = alpha * g + rnd(1 - alpha) * grad
        delta = momRate * delta - learnRate * grad / numpy.sqrt(n - g**2 + epsilon)
        param = param + delta
    return {"param": param, "mg": g, "ms": n, "delta": -delta}


def adamwOracle(param, grads, alpha, beta1, beta2, epsilon, weightDecay=0.0, rnd=float):
    """Kingma & Ba 2015, Algorithm 1 (and Loshchilov & Hutter 2019, Algorithm 2, for the decoupled decay):
    θ ← θ·(1 − α·λ) − α·m̂/(sqrt(v̂) + ε), with 1 − α·λ, α/(1 − β1^t) and sqrt(1 − β2^t) the values the kernel
    gets."""
    m, v = numpy.zeros_like(param), numpy.zeros_like(param)
    for t, grad in enumerate(grads, start=1):
        m = beta1 * m + rnd(1 - beta1) * grad
        v = beta2 * v + rnd(1 - beta2) * grad**2
        stepSize, rootFix2 = rnd(alpha / (1 - beta1**t)), rnd(math.sqrt(1 - beta2**t))
        mHatTimesAlpha, rootVHat = stepSize * m, numpy.sqrt(v) / rootFix2
        param = rnd(1 - alpha * weightDecay) * param - mHatTimesAlpha / (rootVHat + epsilon)
    return {"param": param, "m": m, "v": v}


def smorms3Oracle(param, grads, learnRate, epsilon, rnd=float):
    """Funk 2015: r = 1/(mem + 1), running means g, g2 with weight r, x = g²/(g2 + ε), mem ← 1 + mem·(1 − x)."""
    mem, g, g2 = numpy.ones_like(param), numpy.zeros_like(param), numpy.zeros_like(param)
    for grad in grads:
        r = 1 / (mem + 1)
        g = (1 - r) * g + r * grad
        g2 = (1 - r) * g2 + r * grad**2
        x = g**2 / (g2 + epsilon)
        param = param - grad * numpy.minimum(learnRate, x) / (numpy.sqrt(g2) + epsilon)
        mem = 1 + mem * (1 - x)
    return {"param": param, "mem": mem, "mg": g, "ms": g2}


RATE, UNIT, EPS = st.floats(1e-4, 0.1), st.floats(0.0, 0.99), st.floats(1e-8, 1e-2)

SPECS = {  # name -> (optimizer class, hyperparameter strategies, float64 oracle)
    "MomentumSGD": (MomentumSGD, {"learnRate": RATE, "momRate": UNIT}, momentumOracle),
    "NesterovSGD": (NesterovSGD, {"learnRate": RATE, "momRate": UNIT}, nesterovOracle),
    "AdaDelta": (AdaDelta, {"learnRate": st.floats(0.1, 2.0), "rho": UNIT, "epsilon": EPS}, adadeltaOracle),
    "RMSProp": (RMSProp, {"learnRate": RATE, "factor": UNIT, "epsilon": EPS}, rmspropOracle),
    # alpha ≥ 0.5: for smaller ones n − g² is a difference of nearly equal numbers within 3 steps, and float32
    # state cannot match a float64 oracle there (not a defect of the kernel, a conditioning of the formula)
    "RMSPropGraves": (RMSPropGraves, {"learnRate": RATE, "alpha": st.floats(0.5, 0.99), "momRate": UNIT,
                                      "epsilon": st.floats(1e-4, 1e-2)}, gravesOracle),
    "Adam": (Adam, {"alpha": RATE, "beta1": UNIT, "beta2": st.floats(0.9, 0.9999), "epsilon": EPS}, adamwOracle),
    "AdamW": (AdamW, {"alpha": RATE, "beta1": UNIT, "beta2": st.floats(0.9, 0.9999), "epsilon": EPS,
                      "weightDecay": st.floats(0.0, 0.1)}, adamwOracle),
    "SMORMS3": (SMORMS3, {"learnRate": RATE, "epsilon": st.floats(1e-16, 1e-8)}, smorms3Oracle),
}


CLASSES = {**{name: spec[0] for name, spec in SPECS.items()}, "AdaGrad": AdaGrad, "SGD": SGD}  # every optimizer


def rounding(dtype):
    """Round a host value to the compute type of ``dtype``, as the kernel receives it."""
    ct = computeType(dtype)
    return lambda value: float(ct.type(value))


@st.composite
def cases(draw, name):
    cls, hyperStrategies, _ = SPECS[name]
    dtype, shape = draw(floatDtypes(half=True)), draw(shapes())
    param = draw(arrays(dtype, shape))
    grads = [draw(arrays(dtype, shape, -2, 2)) for _ in range(STEPS)]
    hypers = {key: rounding(dtype)(draw(strategy)) for key, strategy in hyperStrategies.items()}
    return dtype, param, grads, hypers


def runSteps(run, name, param, grads, hypers, master=False):
    """Step the optimizer's direct kernel (or, with ``master``, its master kernel on float32 masters of the
    parameters) over ``grads`` on one path; returns {"param": the parameters (the masters), state name: array}."""
    optimizer = CLASSES[name]()
    optimizer.setAttrDict(hypers)
    rule = optimizer.rule
    gradScale, skip = numpy.ones(1, computeType(param.dtype)), numpy.zeros(1, numpy.int32)
    arrays = {"param": param.astype(numpy.float32) if master else param,
              **{key: toHost(value) for key, value in optimizer.setupState(param).items()}}
    half = param
    for t, grad in enumerate(grads, start=1):
        optimizer.t = t - 1  # the steps taken before this one: beforeRule prepares step t
        optimizer.beforeRule()  # what the step computes on the device first (Adam's bias corrections)
        values = [toHost(value) if isDeviceArray(value) else value for value in optimizer.hyperValues(
            optimizer.learnRate)]
        head = [grad, gradScale, skip, *values]
        states = [arrays[key] for key in rule.states]
        if master:
            *outputs, half = run(rule.master, head + [arrays["param"], *states, half])
            numpy.testing.assert_array_equal(half, outputs[0].astype(param.dtype), err_msg="the float16 copy")
        else:
            outputs = run(rule.direct, head + [arrays["param"], *states])
        arrays = dict(zip(["param", *rule.states], outputs))
    return arrays


def compare(actual, expected, dtype, what, signedZeros=False):
    assert sorted(actual) == sorted(expected), what
    names = sorted(expected)
    assertMatches([actual[key] for key in names], [expected[key] for key in names], dtype, f"{what} {names}",
                  signedZeros=signedZeros)


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_cpu_matches_paper_formula_in_float64(name, data):
    dtype, param, grads, hypers = data.draw(cases(name))
    wide = [grad.astype(numpy.float64) for grad in grads]
    expected = SPECS[name][2](param.astype(numpy.float64), wide, **hypers, rnd=rounding(dtype))
    compare(runSteps(runNumpy, name, param, grads, hypers), expected, dtype, name)


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_master_kernel_matches_paper_formula_at_float32_precision(name, data):
    """float16 parameters with float32 masters: the masters follow the formula as float32 parameters would."""
    _, param, grads, hypers = data.draw(cases(name))
    param, grads = param.astype(numpy.float16), [grad.astype(numpy.float16) for grad in grads]
    hypers = {key: rounding(numpy.float32)(value) for key, value in hypers.items()}
    wide = [grad.astype(numpy.float64) for grad in grads]
    expected = SPECS[name][2](param.astype(numpy.float64), wide, **hypers, rnd=rounding(numpy.float32))
    compare(runSteps(runNumpy, name, param, grads, hypers, master=True), expected, numpy.float32, f"{name} master")


@pytest.mark.parametrize("path", ["host", devicePath()])
@pytest.mark.parametrize("master", [False, True])
@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_other_paths_match_cpu(path, master, name, data):
    dtype, param, grads, hypers = data.draw(cases(name))
    if master:
        param, grads, dtype = param.astype(numpy.float16), [grad.astype(numpy.float16) for grad in grads], numpy.float32
    onPath = runSteps(lambda kernel, args: runPath(path, kernel, args), name, param, grads, hypers, master)
    expected = runSteps(runNumpy, name, param, grads, hypers, master)
    compare(onPath, expected, dtype, f"{name} on {path}", signedZeros=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("master", [False, True])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_special_values_give_the_same_results_on_every_cpu_path(name, master):
    """NaN, ±inf, -0.0 and a subnormal in the gradient: the compiled CUDA text and the NumPy reference agree
    (NaN where either has NaN, the same infinities), in the direct and the master kernel."""
    dtype = numpy.float16 if master else numpy.float32
    special = numpy.array([numpy.nan, numpy.inf, -numpy.inf, -0.0, 1e-40 if not master else 1e-7, 0.5], dtype)
    param = numpy.linspace(-1, 1, special.size).astype(dtype)
    defaults = SPECS[name][0]()
    hypers = {key: getattr(defaults, key) for key in SPECS[name][1]}
    grads = [special, special[::-1].copy()]
    onHost = runSteps(lambda kernel, args: runPath("host", kernel, args), name, param, grads, hypers, master)
    onNumpy = runSteps(runNumpy, name, param, grads, hypers, master)
    for key in onNumpy:
        numpy.testing.assert_allclose(onHost[key], onNumpy[key], rtol=1e-5, atol=0, err_msg=f"{name} {key}")


@pytest.mark.parametrize("path", ["numpy", "host", devicePath()])
@pytest.mark.parametrize("name, dtype, param, grads, hypers, expected", [
    # an infinite parameter stays infinite: Adam's decay is the product 1 · param, not param − 0 · param (NaN)
    ("Adam", numpy.float32, [numpy.inf, -numpy.inf], [[0.5, -0.5]], {}, {"param": [numpy.inf, -numpy.inf]}),
    ("AdamW", numpy.float32, [numpy.inf], [[0.5]], {"weightDecay": 0.1}, {"param": [numpy.inf]}),
    # one subtraction of the whole step: -0.0 − (−0.0 + 0.0) keeps the sign
    ("NesterovSGD", numpy.float16, [-0.0], [[-0.0]], {}, {"param": [-0.0]}),
    # beta1 · m underflows to -0.0, then + (1 − beta1) · 0: +0.0 when the product is rounded (no fused multiply-add)
    ("Adam", numpy.float32, [0.0], [[-1.0], [0.0], [0.0]], {"beta1": float(numpy.finfo(numpy.float32).tiny)},
     {"m": [0.0]}),
])
def test_special_values_known_answers(path, name, dtype, param, grads, hypers, expected):
    """Cases where the paths once differed, with their IEEE answers (signs of zeros included)."""
    defaults = SPECS[name][0]()
    hypers = {**{key: getattr(defaults, key) for key in SPECS[name][1]}, **hypers}
    grads = [numpy.array(grad, dtype) for grad in grads]
    result = runSteps(lambda kernel, args: runPath(path, kernel, args), name, numpy.array(param, dtype), grads, hypers)
    for key, values in expected.items():
        assertMatches([result[key]], [numpy.array(values)], dtype, f"{name} {key} on {path}", signedZeros=True)


@pytest.mark.parametrize("path", ["host", devicePath()])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64, numpy.float16], ids=["float32", "float64", "master"])
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_the_numpy_reference_gives_the_bits_of_the_cuda_text(path, dtype, name):
    """A reference computes in the CUDA text's order (docs/design.md: no fused multiply-adds, products in the text's
    order), so on finite values every path gives the same bits: (1 − β)·g·g is not g·g·(1 − β), nor η·g/d (g/d)·η."""
    rng = numpy.random.default_rng(sorted(CLASSES).index(name))
    param = rng.standard_normal(2000).astype(dtype)
    grads = [rng.standard_normal(2000).astype(dtype) for _ in range(STEPS)]
    master = dtype == numpy.float16
    onPath = runSteps(lambda kernel, args: runPath(path, kernel, args), name, param, grads, {}, master)
    expected = runSteps(runNumpy, name, param, grads, {}, master)
    assert sorted(onPath) == sorted(expected)
    differing = {key: int((onPath[key].view(numpy.uint8) != expected[key].view(numpy.uint8)).sum()) for key in expected}
    assert differing == dict.fromkeys(expected, 0), f"{name} on {path}: bytes differing from the reference's"
