"""The fused step kernels of RNN: one forward and one backward Elementwise per mode, each over the (batch,
hidden) elements of one time step. The input projections of every step (x Wᵢₕᵀ + bᵢₕ) and the recurrent
ones (h Wₕₕᵀ, + bₕₕ) are matrix products made outside; these kernels do the rest of the step's maths. Gate
blocks follow PyTorch's order within each row of G·hidden: lstm (i, f, g, o), gru (r, z, n).

lstm: i, f, o = σ(a_i, a_f, a_o), g = tanh(a_g), c = f c₋ + i g, h = o tanh(c)
gru:  r, z = σ(a_r, a_z), n = tanh(x_n + r hₙ) with hₙ = (h₋ Wₕₙᵀ + bₕₙ), h = (1 - z) n + z h₋
relu, tanh: h = f(x + h₋ Wₕₕᵀ)

The forward kernels keep what backward reads: lstm its four activated gates, gru (r, z, n, hₙ).

On the CPU, the kernels full of exp and tanh run their NumPy references (``cpuPath="numpy"``): NumPy's
vectorized exp and tanh beat the compiled text, whose gate reads from raw arrays keep the host compiler
from vectorizing them. Batch 32, 128 units, on the loaded 2-core machine: lstm forward 1.0-1.7 ms against
2.7-3.4 ms compiled, lstm backward 0.8-1.0 against 1.4-1.7 ms, gru forward 0.7-1.0 against 1.7-2.5 ms,
tanh forward 0.04 against 0.45 ms; the others measured faster compiled.
"""

import numpy

from minidl.backend import Elementwise


def _sigmoid(x):
    with numpy.errstate(over="ignore"):
        return 1 / (1 + numpy.exp(-x))


def _blocks(array, count, hsize):
    """A (batch, count·hsize) array as ``count`` views of (batch, hsize)."""
    rows = array.reshape(-1, count * hsize)
    return [rows[:, k * hsize:(k + 1) * hsize] for k in range(count)]


# lstm

def _lstmForwardNumpy(xproj, hproj, cPrev, hsize, c, h, gates):
    pre = xproj.reshape(-1, 4 * hsize) + hproj.reshape(-1, 4 * hsize)
    ai, af, ag, ao = _blocks(pre, 4, hsize)
    gi, gf, gg, go = _blocks(gates, 4, hsize)
    gi[...], gf[...], gg[...], go[...] = _sigmoid(ai), _sigmoid(af), numpy.tanh(ag), _sigmoid(ao)
    numpy.multiply(gf, cPrev, out=c)
    c += gi * gg
    numpy.multiply(go, numpy.tanh(c), out=h)


lstmForwardKer = Elementwise(
    "minidl_lstm_forward",
    "raw T xproj, raw T hproj, T cPrev, int32 hsize",
    "T c, T h, raw T gates",
    "const ptrdiff_t at = i / hsize * 4 * hsize + i % hsize; "
    "const T gi = (T)1 / ((T)1 + exp(-(xproj[at] + hproj[at]))); "
    "const T gf = (T)1 / ((T)1 + exp(-(xproj[at + hsize] + hproj[at + hsize]))); "
    "const T gg = tanh(xproj[at + 2 * hsize] + hproj[at + 2 * hsize]); "
    "const T go = (T)1 / ((T)1 + exp(-(xproj[at + 3 * hsize] + hproj[at + 3 * hsize]))); "
    "c = gf * cPrev + gi * gg; h = go * tanh(c); "
    "gates[at] = gi; gates[at + hsize] = gf; gates[at + 2 * hsize] = gg; gates[at + 3 * hsize] = go",
    _lstmForwardNumpy,
    cpuPath="numpy",
)


def _lstmGradNumpy(dhOut, dhNext, dcNext, c, cPrev, gates, hsize, dcPrev, dgates):
    gi, gf, gg, go = _blocks(gates, 4, hsize)
    di, df, dg, do = _blocks(dgates, 4, hsize)
    dh = dhOut + dhNext
    tc = numpy.tanh(c)
    dc = dcNext + dh * go * (1 - tc * tc)
    di[...] = dc * gg * gi * (1 - gi)
    df[...] = dc * cPrev * gf * (1 - gf)
    dg[...] = dc * gi * (1 - gg * gg)
    do[...] = dh * tc * go * (1 - go)
    numpy.multiply(dc, gf, out=dcPrev)


lstmGradKer = Elementwise(
    "minidl_lstm_grad",
    "T dhOut, T dhNext, T dcNext, T c, T cPrev, raw T gates, int32 hsize",
    "T dcPrev, raw T dgates",
    "const ptrdiff_t at = i / hsize * 4 * hsize + i % hsize; "
    "const T gi = gates[at], gf = gates[at + hsize], gg = gates[at + 2 * hsize], go = gates[at + 3 * hsize]; "
    "const T dh = dhOut + dhNext; const T tc = tanh(c); "
    "const T dc = dcNext + dh * go * ((T)1 - tc * tc); "
    "dgates[at] = dc * gg * gi * ((T)1 - gi); "
    "dgates[at + hsize] = dc * cPrev * gf * ((T)1 - gf); "
    "dgates[at + 2 * hsize] = dc * gi * ((T)1 - gg * gg); "
    "dgates[at + 3 * hsize] = dh * tc * go * ((T)1 - go); "
    "dcPrev = dc * gf",
    _lstmGradNumpy,
    cpuPath="numpy",
)


# gru

def _gruForwardNumpy(xproj, hproj, hPrev, hsize, h, gates):
    xr, xz, xn = _blocks(xproj, 3, hsize)
    hr, hz, hn = _blocks(hproj, 3, hsize)
    r, z, n, keptHn = _blocks(gates, 4, hsize)
    r[...], z[...], keptHn[...] = _sigmoid(xr + hr), _sigmoid(xz + hz), hn
    n[...] = numpy.tanh(xn + r * hn)
    numpy.multiply(1 - z, n, out=h)
    h += z * hPrev


gruForwardKer = Elementwise(
    "minidl_gru_forward",
    "raw T xproj, raw T hproj, T hPrev, int32 hsize",
    "T h, raw T gates",
    "const ptrdiff_t at = i / hsize * 3 * hsize + i % hsize, kept = i / hsize * 4 * hsize + i % hsize; "
    "const T r = (T)1 / ((T)1 + exp(-(xproj[at] + hproj[at]))); "
    "const T z = (T)1 / ((T)1 + exp(-(xproj[at + hsize] + hproj[at + hsize]))); "
    "const T hn = hproj[at + 2 * hsize]; "
    "const T n = tanh(xproj[at + 2 * hsize] + r * hn); "
    "h = ((T)1 - z) * n + z * hPrev; "
    "gates[kept] = r; gates[kept + hsize] = z; gates[kept + 2 * hsize] = n; gates[kept + 3 * hsize] = hn",
    _gruForwardNumpy,
    cpuPath="numpy",
)


def _gruGradNumpy(dhOut, dhNext, hPrev, gates, hsize, dhPrev, dxgates, dhgates):
    r, z, n, hn = _blocks(gates, 4, hsize)
    dxr, dxz, dxn = _blocks(dxgates, 3, hsize)
    dhr, dhz, dhn = _blocks(dhgates, 3, hsize)
    dh = dhOut + dhNext
    dan = dh * (1 - z) * (1 - n * n)
    dxr[...] = dan * hn * r * (1 - r)
    dxz[...] = dh * (hPrev - n) * z * (1 - z)
    dxn[...] = dan
    dhr[...], dhz[...], dhn[...] = dxr, dxz, dan * r
    numpy.multiply(dh, z, out=dhPrev)


gruGradKer = Elementwise(
    "minidl_gru_grad",
    "T dhOut, T dhNext, T hPrev, raw T gates, int32 hsize",
    "T dhPrev, raw T dxgates, raw T dhgates",
    "const ptrdiff_t at = i / hsize * 3 * hsize + i % hsize, kept = i / hsize * 4 * hsize + i % hsize; "
    "const T r = gates[kept], z = gates[kept + hsize], n = gates[kept + 2 * hsize], hn = gates[kept + 3 * hsize]; "
    "const T dh = dhOut + dhNext; "
    "const T dan = dh * ((T)1 - z) * ((T)1 - n * n); "
    "const T dar = dan * hn * r * ((T)1 - r); "
    "const T daz = dh * (hPrev - n) * z * ((T)1 - z); "
    "dxgates[at] = dar; dxgates[at + hsize] = daz; dxgates[at + 2 * hsize] = dan; "
    "dhgates[at] = dar; dhgates[at + hsize] = daz; dhgates[at + 2 * hsize] = dan * r; "
    "dhPrev = dh * z",
    _gruGradNumpy,
)


# relu and tanh (NaN passes through relu, as IEEE arithmetic would: !(a <= 0) holds for NaN)

def _reluForwardNumpy(xproj, hproj, h):
    numpy.add(xproj, hproj, out=h)
    numpy.copyto(h, 0, where=h <= 0)


def _reluGradNumpy(dhOut, dhNext, h, dgates):
    numpy.add(dhOut, dhNext, out=dgates)
    numpy.copyto(dgates, 0, where=h <= 0)


def _tanhForwardNumpy(xproj, hproj, h):
    numpy.add(xproj, hproj, out=h)
    numpy.tanh(h, out=h)


def _tanhGradNumpy(dhOut, dhNext, h, dgates):
    numpy.add(dhOut, dhNext, out=dgates)
    dgates *= 1 - h * h


reluForwardKer = Elementwise(
    "minidl_rnn_relu_forward", "T xproj, T hproj", "T h",
    "const T a = xproj + hproj; h = !(a <= (T)0) ? a : (T)0", _reluForwardNumpy,
)
reluGradKer = Elementwise(
    "minidl_rnn_relu_grad", "T dhOut, T dhNext, T h", "T dgates",
    "dgates = !(h <= (T)0) ? (T)(dhOut + dhNext) : (T)0", _reluGradNumpy,
)
tanhForwardKer = Elementwise(
    "minidl_rnn_tanh_forward", "T xproj, T hproj", "T h", "h = tanh(xproj + hproj)", _tanhForwardNumpy,
    cpuPath="numpy",
)
tanhGradKer = Elementwise(
    "minidl_rnn_tanh_grad", "T dhOut, T dhNext, T h", "T dgates",
    "dgates = (dhOut + dhNext) * ((T)1 - h * h)", _tanhGradNumpy,
)

SIMPLE_KERNELS = {"relu": (reluForwardKer, reluGradKer), "tanh": (tanhForwardKer, tanhGradKer)}  # forward, grad
