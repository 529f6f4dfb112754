"""RNN: a multi-layer, uni- or bidirectional recurrent layer (lstm, gru, relu or tanh cells) on sequences of
shape (time, batch, features).

Per layer and direction, the input projections of all steps are ONE matrix product, X Wᵢₕᵀ over (time·batch)
rows; each step then multiplies the previous hidden state by Wₕₕᵀ and runs its mode's fused step kernel
(minidl.nn.rnnkernels), which adds the biases (relu and tanh: bᵢₕ + bₕₕ added to the input projections first).
Backward runs the steps in reverse through the fused backward kernels, then gets ∂Wᵢₕ, ∂Wₕₕ and the input
gradient as one matrix product each over all steps.

Weights have PyTorch's names and shapes (``weight_ih_l0`` (G·hsize, insize), ``weight_hh_l0`` (G·hsize, hsize),
``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse`` for the backward direction; G = 4 lstm, 3 gru, 1 relu/tanh),
drawn as PyTorch draws them, uniform on ±1/sqrt(hsize), so a state dict carries over either way.
"""

import math

import numpy

from minidl.backend import deviceDraw, generator, toDevice, valuesPerElement, xp
from minidl.backend.products import columnSums, cpuContiguous, matmul
from minidl.errors import ModuleError
from minidl.nn.dropout import dropout
from minidl.nn.lstmsteps import fused, lstmBackwardSteps, lstmForwardSteps
from minidl.nn.module import Module, checkArray, describe
from minidl.nn.rnnkernels import SIMPLE_KERNELS, gruForwardKer, gruGradKer, lstmForwardKer, lstmGradKer
from minidl.validation import checkNumber
from minidl.variable import Variable

GATES = {"lstm": 4, "gru": 3, "relu": 1, "tanh": 1}
DIRECTIONS = {"uni": 1, "bi": 2}


class RNN(Module):
    """``RNN(insize, hsize, layers=1, mode="lstm", direction="uni", dropout=0.0, getSequences=False)``.

    Input: data (time, batch, insize), or a list [data, h0] ([data, h0, c0] for lstm) with initial states of
    shape (layers·directions, batch, hsize), PyTorch's order (layer 0 forward, layer 0 backward, layer 1 ...).
    Output: with ``getSequences`` the top layer's hidden states (time, batch, directions·hsize); else its final
    ones (batch, directions·hsize), forward then backward direction. The final states of every layer are
    kept in ``hn`` (and ``cn``) after each forward pass: feed them back as the next chunk's initial states for
    truncated backpropagation through time. Backward returns the input gradient, or [∂data, ∂h0 (, ∂c0)].
    ``dropout`` applies between layers in trainMode, as PyTorch does.
    """

    cacheAttrs = ("inData", "data", "cache", "hn", "cn")

    def __init__(self, insize, hsize, layers=1, mode="lstm", direction="uni", dropout=0.0, getSequences=False,
                 dtype=numpy.float32, name=None):
        super().__init__(name)
        for what, value in (("insize", insize), ("hsize", hsize), ("layers", layers)):
            if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
                raise ModuleError(f"RNN {what} must be a positive integer, got {value!r}")
        if not isinstance(mode, str) or mode not in GATES:
            raise ModuleError(f"RNN mode must be one of {sorted(GATES)}, got {mode!r}")
        if not isinstance(direction, str) or direction not in DIRECTIONS:
            raise ModuleError(f"RNN direction must be 'uni' or 'bi', got {direction!r}")
        dropout = checkNumber(dropout, "RNN dropout", low=0, high=1, highOpen=True)
        if numpy.dtype(dtype) not in (numpy.float32, numpy.float64):
            raise ModuleError(f"RNN computes in float32 or float64, got dtype {numpy.dtype(dtype)}")
        self.insize, self.hsize, self.layers = int(insize), int(hsize), int(layers)
        self.mode, self.direction, self.dropout, self.getSequences = mode, direction, float(dropout), getSequences
        self.dirs, self.gates = DIRECTIONS[direction], GATES[mode]
        bound = 1 / math.sqrt(self.hsize)
        for layer in range(self.layers):
            size = self.insize if layer == 0 else self.dirs * self.hsize
            for d in range(self.dirs):
                shapes = {"weight_ih": (self.gates * hsize, size), "weight_hh": (self.gates * hsize, hsize),
                          "bias_ih": (self.gates * hsize,), "bias_hh": (self.gates * hsize,)}
                for kind, shape in shapes.items():
                    name = self.varName(kind, layer, d)
                    data = toDevice(generator().uniform(-bound, bound, size=shape), dtype=dtype)
                    self.setVar(name, Variable(data, name=name))
        self.cache = self.hn = self.cn = None

    @staticmethod
    def varName(kind, layer, direction):
        return f"{kind}_l{layer}" + ("_reverse" if direction else "")

    def stateCount(self):
        """How many state arrays the input may carry: 2 (h0, c0) for lstm, else 1 (h0)."""
        return 2 if self.mode == "lstm" else 1

    # checks

    def checkData(self, data):
        dtype = self.vars["weight_ih_l0"].data.dtype
        if isinstance(data, (list, tuple)):
            if len(data) != 1 + self.stateCount():
                states = "[data, h0, c0]" if self.mode == "lstm" else "[data, h0]"
                raise ModuleError(f"{self!r}: input must be data or a list {states}, got {describe(data)}")
            sequence, states = data[0], data[1:]
        else:
            sequence, states = data, ()
        checkArray(sequence, f"{self!r}: data", ndim=3, dtype=dtype)
        if sequence.shape[2] != self.insize or sequence.shape[0] == 0 or sequence.shape[1] == 0:
            raise ModuleError(f"{self!r}: data must have shape (time >= 1, batch >= 1, {self.insize}), "
                              f"got {sequence.shape}")
        stateShape = (self.layers * self.dirs, sequence.shape[1], self.hsize)
        for index, state in enumerate(states):
            what = f"{self!r}: {'h0' if index == 0 else 'c0'}"
            checkArray(state, what, ndim=3, dtype=dtype)
            if state.shape != stateShape:
                raise ModuleError(f"{what} must have shape (layers·directions, batch, hsize) = {stateShape}, "
                                  f"got {state.shape}")

    # forward

    def updData(self, data):
        sequence, states = (data[0], list(data[1:])) if isinstance(data, (list, tuple)) else (data, [])
        steps, batch = sequence.shape[:2]
        stateShape = (self.layers * self.dirs, batch, self.hsize)
        h0 = states[0] if states else xp.zeros(stateShape, dtype=sequence.dtype)
        c0 = states[1] if len(states) > 1 else xp.zeros(stateShape, dtype=sequence.dtype)
        self.hn, self.cn = xp.empty_like(h0), (xp.empty_like(c0) if self.mode == "lstm" else None)
        self.cache = []
        layerIn = xp.ascontiguousarray(sequence)
        for layer in range(self.layers):
            draw = None
            if layer > 0 and self.dropout and self.train:
                draw = deviceDraw()
                layerIn = dropout(layerIn, draw, self.dropout)
            runs = []
            out = xp.empty((steps, batch, self.dirs * self.hsize), dtype=sequence.dtype)
            for d in range(self.dirs):
                k = layer * self.dirs + d
                run = self._forwardDirection(layerIn, layer, d, h0[k], c0[k])
                out[:, :, d * self.hsize:(d + 1) * self.hsize] = run["hs"][1:][::-1] if d else run["hs"][1:]
                self.hn[k] = run["hs"][-1]
                if self.mode == "lstm":
                    self.cn[k] = run["cs"][-1]
                runs.append(run)
            self.cache.append({"input": layerIn, "draw": draw, "runs": runs})
            layerIn = out
        if self.getSequences:
            return layerIn
        top = self.hn[(self.layers - 1) * self.dirs:]
        return xp.ascontiguousarray(xp.concatenate(list(top), axis=1))

    def _forwardDirection(self, layerIn, layer, d, h0, c0):
        """Run one direction of one layer; return what backward reads. ``hs[s]``/``cs[s]``: the states before
        processing step s (s = 0..time, in processing order: time reversed for the backward direction)."""
        steps, batch, size = layerIn.shape
        width = self.gates * self.hsize
        wIh, wHh, bIh, bHh = (self.vars[self.varName(kind, layer, d)].data
                              for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        xproj = matmul(layerIn.reshape(-1, size), wIh.T)
        if self.mode not in ("lstm", "gru"):  # their step kernels add the biases
            xproj += xp.add(bIh, bHh)  # xp.add, not +: a captured step records xp's calls (minidl.backend.tape)
        xproj = xproj.reshape(steps, batch, width)
        if self.mode == "lstm" and fused(layerIn.dtype, batch, self.hsize):
            return self._fusedForward(xproj, wHh, bIh, bHh, h0, c0, d)
        hs = xp.empty((steps + 1, batch, self.hsize), dtype=layerIn.dtype)
        hs[0] = h0
        cs = None
        gates = None
        if self.mode == "lstm":
            cs = xp.empty_like(hs)
            cs[0] = c0
            gates = xp.empty((steps, batch, width), dtype=layerIn.dtype)
        elif self.mode == "gru":
            gates = xp.empty((steps, batch, 4 * self.hsize), dtype=layerIn.dtype)
        hproj = xp.empty((batch, width), dtype=layerIn.dtype)
        wT = cpuContiguous(wHh.T)  # laid out once per pass for the steps' small products
        span = valuesPerElement(self.hsize)
        elements = batch * self.hsize // span
        for s in range(steps):
            t = steps - 1 - s if d else s
            matmul(hs[s], wT, out=hproj)
            if self.mode == "lstm":
                lstmForwardKer(xproj[t], hproj, bIh, bHh, cs[s], self.hsize, span, cs[s + 1], hs[s + 1], gates[s],
                               size=elements)
            elif self.mode == "gru":
                gruForwardKer(xproj[t], hproj, bIh, bHh, hs[s], self.hsize, span, hs[s + 1], gates[s], size=elements)
            else:
                SIMPLE_KERNELS[self.mode][0](xproj[t], hproj, hs[s + 1])
        return {"hs": hs, "cs": cs, "gates": gates}

    def _fusedForward(self, xproj, wHh, bIh, bHh, h0, c0, d):
        """The lstm's steps of one direction in one call on the CPU (minidl.nn.lstmsteps); what backward reads, as
        ``_forwardDirection``."""
        steps, batch, _ = xproj.shape
        hs, cs = (xp.empty((steps + 1, batch, self.hsize), dtype=xproj.dtype) for _ in range(2))
        gates = xp.empty_like(xproj)
        hs[0], cs[0] = h0, c0
        lstmForwardSteps(xproj, wHh, bIh, bHh, hs, cs, gates, reverse=bool(d))
        return {"hs": hs, "cs": cs, "gates": gates}

    # backward

    def backward(self, grad, updGrad=True):
        """Backpropagation through time: adds every weight's gradient, returns ∂input (None unless updGrad, and then
        not computed)."""
        self.checkGrad(grad)
        inGrad, paramGrads = self._backprop(xp.ascontiguousarray(grad), updGrad)
        for name, paramGrad in paramGrads.items():
            self.vars[name].grad += paramGrad
        self.grad = inGrad if updGrad else None
        return self.grad

    def _backprop(self, grad, updGrad):
        """(∂input, or None without ``updGrad``: the first layer's input product is skipped; the parameters'
        gradients by name)."""
        H = self.hsize
        steps, batch = self.cache[0]["input"].shape[:2]
        dtype = grad.dtype
        dh0 = xp.zeros((self.layers * self.dirs, batch, H), dtype=dtype)
        dc0 = xp.zeros_like(dh0)
        dhFinal = xp.zeros_like(dh0)
        if self.getSequences:
            dOut = grad
        else:
            dOut = xp.zeros((steps, batch, self.dirs * H), dtype=dtype)
            for d in range(self.dirs):
                dhFinal[(self.layers - 1) * self.dirs + d] = grad[:, d * H:(d + 1) * H]
        paramGrads = {}
        for layer in reversed(range(self.layers)):
            cache = self.cache[layer]
            layerIn = cache["input"]
            dIn = None  # the first direction's product, then the second's added into it by its product
            for d in range(self.dirs):
                k = layer * self.dirs + d
                dOutDir = xp.ascontiguousarray(dOut[:, :, d * H:(d + 1) * H])
                dhPrev, dcPrev, dxgates, dhgates, biasGrad = self._backwardDirection(cache["runs"][d], layer, d,
                                                                                     dOutDir, dhFinal[k])
                dh0[k], dc0[k] = dhPrev, dcPrev
                # the gates' gradients in time order, the states before each step in processing order: reversed for
                # the reverse direction (H wide, where reversing the gradients was 4H or 3H)
                hsPrev = cache["runs"][d]["hs"][:-1]
                hsPrev = xp.ascontiguousarray(hsPrev[::-1] if d else hsPrev).reshape(steps * batch, H)
                width = self.gates * H
                dxTime = dxgates.reshape(steps * batch, width)
                dhRows = dhgates.reshape(steps * batch, width)
                paramGrads[self.varName("weight_ih", layer, d)] = matmul(dxTime.T, layerIn.reshape(steps * batch, -1))
                paramGrads[self.varName("weight_hh", layer, d)] = matmul(dhRows.T, hsPrev)
                paramGrads[self.varName("bias_hh", layer, d)] = columnSums(dhRows) if biasGrad is None else biasGrad
                # lstm and rnn: both biases are added to the same gates, ∂b_ih = ∂b_hh = Σ ∂gates (summed once)
                paramGrads[self.varName("bias_ih", layer, d)] = (paramGrads[self.varName("bias_hh", layer, d)]
                                                                 if dhgates is dxgates else columnSums(dxTime))
                if layer == 0 and not updGrad:
                    continue  # a training step's: no gradient for the data
                wIh = self.vars[self.varName("weight_ih", layer, d)].data
                if dIn is None:
                    dIn = matmul(dxTime, wIh).reshape(layerIn.shape)
                else:
                    matmul(dxTime, wIh, out=dIn.reshape(steps * batch, -1), accumulate=True)
            if cache["draw"] is not None:
                dIn = dropout(dIn, cache["draw"], self.dropout)
            dOut = dIn
        if not updGrad:
            return None, paramGrads
        inData = self.inData
        if isinstance(inData, (list, tuple)):
            return ([dOut, dh0, dc0] if self.mode == "lstm" else [dOut, dh0]), paramGrads
        return dOut, paramGrads

    def _backwardDirection(self, run, layer, d, dOutDir, dhLast):
        """Reverse the steps of one direction; return (∂h0, ∂c0, ∂ of the input projections in time order, ∂ of
        the recurrent projections in time order, the biases' gradient where the steps summed it, else None)."""
        steps, batch, H = dOutDir.shape
        width = self.gates * H
        dtype = dOutDir.dtype
        wHh = self.vars[self.varName("weight_hh", layer, d)].data
        hs, cs, gates = run["hs"], run["cs"], run["gates"]
        if self.mode == "lstm" and fused(dtype, batch, H):
            return self._fusedBackward(dOutDir, wHh, cs, gates, dhLast, d)
        dxgates = xp.empty((steps, batch, width), dtype=dtype)
        dhgates = xp.empty_like(dxgates) if self.mode == "gru" else dxgates
        dhNext = xp.ascontiguousarray(dhLast)
        dcNext = xp.zeros((batch, H), dtype=dtype)
        dcPrev = xp.empty_like(dcNext)
        dhDirect = xp.empty_like(dcNext)
        span = valuesPerElement(H)
        elements = batch * H // span
        for s in reversed(range(steps)):
            t = steps - 1 - s if d else s
            if self.mode == "lstm":
                lstmGradKer(dOutDir[t], dhNext, dcNext, cs[s + 1], cs[s], gates[s], H, span, dcPrev, dxgates[t],
                            size=elements)
                dcNext, dcPrev = dcPrev, dcNext
                dhNext = matmul(dxgates[t], wHh)
            elif self.mode == "gru":
                gruGradKer(dOutDir[t], dhNext, hs[s], gates[s], H, span, dhDirect, dxgates[t], dhgates[t],
                           size=elements)
                dhNext = dhDirect + matmul(dhgates[t], wHh)
            else:
                SIMPLE_KERNELS[self.mode][1](dOutDir[t], dhNext, hs[s + 1], dxgates[t])
                dhNext = matmul(dxgates[t], wHh)
        return dhNext, dcNext, dxgates, dhgates, None

    @staticmethod
    def _fusedBackward(dOutDir, wHh, cs, gates, dhLast, d):
        """The lstm's steps of one direction in reverse in one call on the CPU (minidl.nn.lstmsteps); returns as
        ``_backwardDirection``, with the biases' gradient summed by the loop."""
        steps, batch, H = dOutDir.shape
        dh, dc = xp.array(dhLast), xp.zeros((batch, H), dtype=dOutDir.dtype)  # the loop makes them ∂h₀ and ∂c₀
        dgates = xp.empty((steps, batch, 4 * H), dtype=dOutDir.dtype)
        dbias = xp.zeros(4 * H, dtype=dOutDir.dtype)
        lstmBackwardSteps(dOutDir, wHh, cs, gates, dh, dc, dgates, dbias, reverse=bool(d))
        return dh, dc, dgates, dgates, dbias
