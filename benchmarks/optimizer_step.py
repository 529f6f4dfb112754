"""One optimizer step (and one hook) on 10M float32 parameters in global state: minidl's single in-place kernel
against the naive array-expression way (fresh temporaries per operation), in one run on this machine; then
AdaGrad's step on a model of 100 small variables in global state (one launch) against local state (one
launch per variable). On the CPU it starts with AdaGrad through each CPU path (benchmarks.host_kernels):
the NumPy reference, the compiled CUDA text, and PyTorch's Adagrad when torch is installed.

    python -m benchmarks.optimizer_step [--size 10000000] [--repeat 5]

Columns: ms per step (median of --repeat), the bytes a fused kernel must move per parameter (arrays read plus
arrays written, 4 bytes each), the GB/s that makes and its share of the copy bandwidth measured in the same
run, and naive ms / minidl ms. On the GPU both sides run on CuPy, followed by PyTorch's foreach and fused
Adagrad and Adam on the same GPU when torch imports with CUDA.
"""

import argparse
import functools
import itertools

import numpy

from benchmarks.host_kernels import printAdagradPaths
from benchmarks.timing import copyBandwidth, machine, medianSeconds
from minidl import backend, optim
from minidl.backend import xp
from minidl.nn import Linear, Sequential
from minidl.optim import hooks


def sgd(p, g, s, t, lr=1e-3):
    p -= lr * g


def adagrad(p, g, s, t, lr=1e-3, eps=1e-8):
    s["h"] = s["h"] + g * g
    p -= lr * g / (xp.sqrt(s["h"]) + eps)


def momentum(p, g, s, t, lr=1e-3, mu=0.9):
    s["mom"] = mu * s["mom"] + lr * g
    p -= s["mom"]


def nesterov(p, g, s, t, lr=1e-3, mu=0.9):
    s["mom"] = mu * s["mom"] + lr * g
    p -= mu * s["mom"] + lr * g


def adadelta(p, g, s, t, rho=0.95, eps=1e-6):
    s["msg"] = rho * s["msg"] + (1 - rho) * g * g
    dx = xp.sqrt((s["msdx"] + eps) / (s["msg"] + eps)) * g
    s["msdx"] = rho * s["msdx"] + (1 - rho) * dx * dx
    p -= dx


def rmsprop(p, g, s, t, lr=1e-3, factor=0.9, eps=1e-5):
    s["ms"] = factor * s["ms"] + (1 - factor) * g * g
    p -= lr * g / (xp.sqrt(s["ms"]) + eps)


def graves(p, g, s, t, lr=1e-4, alpha=0.95, mu=0.9, eps=1e-4):
    s["mg"] = alpha * s["mg"] + (1 - alpha) * g
    s["ms"] = alpha * s["ms"] + (1 - alpha) * g * g
    s["delta"] = mu * s["delta"] + lr * g / xp.sqrt(s["ms"] - s["mg"] ** 2 + eps)
    p -= s["delta"]


def adamw(p, g, s, t, alpha=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, decay=0.0):
    s["m"] = beta1 * s["m"] + (1 - beta1) * g
    s["v"] = beta2 * s["v"] + (1 - beta2) * g * g
    mHat, vHat = s["m"] / (1 - beta1**t), s["v"] / (1 - beta2**t)
    if decay:
        p -= alpha * decay * p
    p -= alpha * mHat / (xp.sqrt(vHat) + eps)


def smorms3(p, g, s, t, lr=1e-3, eps=1e-16):
    r = 1 / (1 + s["mem"])
    s["mg"] = (1 - r) * s["mg"] + r * g
    s["ms"] = (1 - r) * s["ms"] + r * g * g
    x = s["mg"] ** 2 / (s["ms"] + eps)
    s["mem"] = 1 + s["mem"] * (1 - x)
    p -= g * xp.minimum(lr, x) / (xp.sqrt(s["ms"]) + eps)


def l2(p, g, s, t, rate=1e-4):
    g += rate * p


def l1(p, g, s, t, rate=1e-4):
    g += rate * xp.sign(p)


def clip(p, g, s, t, maxNorm=0.1):
    norm = float(xp.sqrt((g * g).sum()))
    if norm > maxNorm:
        g *= maxNorm / norm


def hardClip(p, g, s, t, low=-1e-3, high=1e-3):
    g[...] = xp.clip(g, low, high)


OPTIMIZERS = [  # (optimizer class, naive step, state arrays (name: initial value), bytes per parameter)
    (optim.SGD, sgd, {}, 12),
    (optim.AdaGrad, adagrad, {"h": 0}, 20),
    (optim.MomentumSGD, momentum, {"mom": 0}, 20),
    (optim.NesterovSGD, nesterov, {"mom": 0}, 20),
    (optim.AdaDelta, adadelta, {"msg": 0, "msdx": 0}, 28),
    (optim.RMSProp, rmsprop, {"ms": 0}, 20),
    (optim.RMSPropGraves, graves, {"mg": 0, "ms": 0, "delta": 0}, 36),
    (optim.Adam, adamw, {"m": 0, "v": 0}, 28),
    (optim.AdamW, lambda *args: adamw(*args, decay=1e-2), {"m": 0, "v": 0}, 28),
    (optim.SMORMS3, smorms3, {"mem": 1, "mg": 0, "ms": 0}, 36),
]
HOOKS = [  # (hook, naive rewrite of the gradient, bytes per parameter)
    (hooks.WeightDecay(1e-4), l2, 12),
    (hooks.L1Decay(1e-4), l1, 12),
    (hooks.GradientClip(0.1), clip, 12),  # the gradient's norm is about 32: every call rescales
    (hooks.GradientHardClip(-1e-3, 1e-3), hardClip, 8),
]


def measure(label, step, naive, stateInit, bytesPerParam, var, grad, repeat, bandwidth, isHook):
    """Time minidl's step and the naive one from the same values and print the row. A hook rewrites the
    gradient, so each call of a hook row starts from the same fresh gradient again (untimed)."""
    var.grad[...] = grad
    param, naiveGrad = var.data.copy(), grad.copy()
    state = {name: xp.full(param.shape, value, numpy.float32) for name, value in stateInit.items()}
    steps = itertools.count(1)
    restoreOurs, restoreNaive = (functools.partial(xp.copyto, g, grad) for g in (var.grad, naiveGrad))
    ours = medianSeconds(step, repeat, warmup=1, before=restoreOurs if isHook else None)
    theirs = medianSeconds(lambda: naive(param, naiveGrad, state, next(steps)), repeat, warmup=1,
                           before=restoreNaive if isHook else None)
    rate = bytesPerParam * var.data.size / ours / 1e9
    print(f"| {label} | {1e3 * ours:.1f} | {bytesPerParam} | {rate:.1f} | {rate / bandwidth:.0%} | "
          f"{1e3 * theirs:.1f} | {theirs / ours:.2f}x |")


def localGlobalRows(variables=100, side=32):
    """AdaGrad's ms per step on 50 Linear(side, side) layers (100 Variables), global and local state."""
    seconds = {}
    for useGlobalState in (True, False):
        net = Sequential().extend([Linear(side, side) for _ in range(variables // 2)])
        optimizer = optim.AdaGrad(learnRate=1e-3).setupOn(net, useGlobalState=useGlobalState)
        seconds[useGlobalState] = medianSeconds(optimizer.update, repeats=50)
    print(f"\nAdaGrad step, {variables} variables ({variables // 2} x Linear({side}, {side})), "
          f"{net.numOfParams():,} parameters\n")
    print("| state | ms/step | speed-up over local |")
    print("|---|---:|---:|")
    for useGlobalState, label in ((True, "global (one launch)"), (False, "local (one launch per variable)")):
        print(f"| {label} | {seconds[useGlobalState] * 1e3:.3f} | {seconds[False] / seconds[useGlobalState]:.1f}x |")


TORCH_OPTIMIZERS = (("Adagrad", 20), ("Adam", 28))  # PyTorch's class, and the bytes/param of minidl's row


def torchGpuRows(size, repeat, bandwidth):
    """On the GPU: PyTorch's Adagrad and Adam steps (foreach and fused) on as many float32 parameters, in the
    columns of minidl's rows above (the same bytes per parameter and copy bandwidth), when torch has CUDA."""
    try:
        import torch
    except ImportError:
        print("\nPyTorch does not import here: no comparison with its fused optimizers")
        return
    if not torch.cuda.is_available():
        print(f"\nPyTorch {torch.__version__} has no CUDA here: no comparison with its fused optimizers")
        return
    print(f"\nPyTorch {torch.__version__} on the same GPU, {size:,} float32 parameters\n")
    print("| step | ms | bytes/param | GB/s | of copy bandwidth |")
    print("|---|---:|---:|---:|---:|")
    for name, bytesPerParam in TORCH_OPTIMIZERS:
        for option in ("foreach", "fused"):
            param = torch.nn.Parameter(torch.randn(size, device="cuda"))
            param.grad = torch.randn(size, device="cuda") * 1e-2
            try:
                optimizer = getattr(torch.optim, name)([param], lr=1e-3, **{option: True})
                step = optimizer.step
                seconds = medianSeconds(lambda: (step(), torch.cuda.synchronize()), repeat, warmup=1)  # noqa: B023
            except RuntimeError as error:  # an option this build does not support on CUDA
                print(f"| {name}({option}=True) | not supported: {str(error).splitlines()[0]} | | | |")
                continue
            rate = bytesPerParam * size / seconds / 1e9
            print(f"| {name}({option}=True) | {seconds * 1e3:.1f} | {bytesPerParam} | {rate:.1f} | "
                  f"{rate / bandwidth:.0%} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="parameters (rounded to a multiple of 1000)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    if not backend.isGpu:
        printAdagradPaths(args.size)
        print()
    backend.seed(0)
    layer = Linear(1000, max(1, args.size // 1000), useBias=False)  # one float32 Variable of ~size parameters
    var = layer.vars["W"]
    grad = xp.asarray(numpy.random.default_rng(1).standard_normal(var.shape, dtype=numpy.float32) * 1e-2)
    bandwidth = copyBandwidth(var.data.size)
    print(f"# {machine()}; copy bandwidth {bandwidth:.1f} GB/s")
    print(f"\nOne step, {var.data.size:,} float32 parameters, global state\n")
    print("| step | minidl ms | bytes/param | GB/s | of copy bandwidth | naive ms | speed-up over naive |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cls, naive, stateInit, bytesPerParam in OPTIMIZERS:
        optimizer = cls().setupOn(layer, useGlobalState=True)
        optimizer.nonFinite = "off"  # the kernel alone: benchmarks.precision measures the guard
        step = optimizer.update
        measure(cls.__name__, step, naive, stateInit, bytesPerParam, var, grad, args.repeat, bandwidth, False)
    for hook, naive, bytesPerParam in HOOKS:
        groups = optim.SGD().setupOn(layer, useGlobalState=True).groups
        step = functools.partial(hook, groups)
        measure(f"hook {hook!r}", step, naive, {}, bytesPerParam, var, grad, args.repeat, bandwidth, True)
    if backend.isGpu:
        torchGpuRows(var.data.size, args.repeat, bandwidth)
    localGlobalRows()


if __name__ == "__main__":
    main()
