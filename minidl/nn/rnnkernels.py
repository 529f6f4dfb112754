"""The fused step kernels of RNN: one forward and one backward Elementwise per mode, each over the (batch,
hidden) units of one time step. The input projections of every step (x Wᵢₕᵀ) and the recurrent ones (h₋ Wₕₕᵀ)
are matrix products made outside; these kernels do the rest of the step's maths, the lstm and gru ones adding
the biases too (so no pass adds them to every step's input projections first, nor, for gru, bₕₕ to each step's
recurrent one: a launch per step on a GPU). Gate blocks follow PyTorch's order within each row of G·hidden: lstm
(i, f, g, o), gru (r, z, n).

lstm: a = (x Wᵢₕᵀ + bᵢₕ) + (h₋ Wₕₕᵀ + bₕₕ); i, f, o = σ(a_i, a_f, a_o), g = tanh(a_g), c = f c₋ + i g, h = o tanh(c)
gru:  r, z = σ((x Wᵢₕᵀ + bᵢₕ) + (h₋ Wₕₕᵀ + bₕₕ)) of their blocks, n = tanh(x_n + bᵢₙ + r hₙ) with hₙ = h₋ Wₕₙᵀ + bₕₙ,
      h = (1 - z) n + z h₋
relu, tanh: h = f(x + h₋ Wₕₕᵀ), the biases in x

The forward kernels keep what backward reads: lstm its four activated gates, gru (r, z, n, hₙ).

The lstm and gru kernels take ``span``: each element covers ``span`` consecutive units of one batch row (a divisor
of hsize), its loop over them preceded by ``#pragma omp simd`` so that the host compiler vectorizes it, exp and tanh
from glibc's libmvec (4 ulp at most); NVRTC ignores the pragma. The RNN picks it by
``minidl.backend.valuesPerElement``: a whole row on the CPU, one unit (a thread each) on a GPU. Their arrays are raw
(the loop's size, batch·hsize / span, is given as size=) and must not overlap: the loop reads and writes them
through restrict pointers. On the CPU they run compiled. Per call, batch 32, 128 units, float32, on the 2-core VM
(load average 0.5 by uptime), best of 7 x 2000 calls, NumPy reference against compiled with span = hsize: lstm
forward 54.1 against 13.6 µs, lstm backward 51.6 against 6.6, gru forward 48.2 against 9.6, gru backward 45.3
against 4.5. The compiled text with one element per unit (``i / hsize`` and ``i % hsize`` per element, not
vectorized) took 190, 79, 101 and 12 µs. The tanh forward kernel runs compiled too: 3.4 µs against its NumPy
reference's 6.6 in the same run.
"""

import numpy

from minidl.backend import Elementwise

# The element i of an lstm or gru step kernel: units [unit, unit + span) of batch row ``row``, the first of them
# at ``first`` in the (batch, hsize) arrays; its loop runs over them, k the unit's offset.
STEP_UNITS = "const ptrdiff_t first = i * span, row = first / hsize, unit = first - row * hsize; "
UNIT_LOOP = "\n#pragma omp simd\nfor (int k = 0; k < span; ++k) {\n"


def _gateInput(gate, recurrent):
    """The text of gate block ``gate``'s input at unit k: (x Wᵢₕᵀ + bᵢₕ) + (h₋ Wₕₕᵀ + bₕₕ), the step's projections
    at ``x`` and ``recurrent``, the biases at ``bi`` and ``bh``."""
    at = f"k + {gate} * hsize"
    return f"((x[{at}] + bi[{at}]) + ({recurrent}[{at}] + bh[{at}]))"


def _sigmoid(x):
    with numpy.errstate(over="ignore"):
        return 1 / (1 + numpy.exp(-x))


def _blocks(array, count, hsize):
    """A (batch, count·hsize) array as ``count`` views of (batch, hsize)."""
    rows = array.reshape(-1, count * hsize)
    return [rows[:, k * hsize:(k + 1) * hsize] for k in range(count)]


# lstm

def _lstmForwardNumpy(xproj, hproj, bih, bhh, cPrev, hsize, span, c, h, gates):
    pre = (xproj.reshape(-1, 4 * hsize) + bih) + (hproj.reshape(-1, 4 * hsize) + bhh)
    ai, af, ag, ao = _blocks(pre, 4, hsize)
    gi, gf, gg, go = _blocks(gates, 4, hsize)
    gi[...], gf[...], gg[...], go[...] = _sigmoid(ai), _sigmoid(af), numpy.tanh(ag), _sigmoid(ao)
    numpy.multiply(gf, cPrev, out=c)
    c += gi * gg
    numpy.multiply(go, numpy.tanh(c), out=h)


lstmForwardKer = Elementwise(
    "minidl_lstm_forward",
    "raw T xproj, raw T hproj, raw T bih, raw T bhh, raw T cPrev, int32 hsize, int32 span",
    "raw T c, raw T h, raw T gates",
    STEP_UNITS + "const ptrdiff_t at = row * 4 * hsize + unit; "
    "const T* __restrict__ x = &xproj[at]; const T* __restrict__ r = &hproj[at]; T* __restrict__ g = &gates[at]; "
    "const T* __restrict__ bi = &bih[unit]; const T* __restrict__ bh = &bhh[unit]; "
    "const T* __restrict__ cp = &cPrev[first]; T* __restrict__ co = &c[first]; T* __restrict__ ho = &h[first]; "
    + UNIT_LOOP +
    f"  const T gi = (T)1 / ((T)1 + exp(-{_gateInput(0, 'r')})); "
    f"  const T gf = (T)1 / ((T)1 + exp(-{_gateInput(1, 'r')})); "
    f"  const T gg = tanh({_gateInput(2, 'r')}); "
    f"  const T go = (T)1 / ((T)1 + exp(-{_gateInput(3, 'r')})); "
    "  const T cn = gf * cp[k] + gi * gg; co[k] = cn; ho[k] = go * tanh(cn); "
    "  g[k] = gi; g[k + hsize] = gf; g[k + 2 * hsize] = gg; g[k + 3 * hsize] = go; "
    "}",
    _lstmForwardNumpy,
    grain="23 * span",
)


def _lstmGradNumpy(dhOut, dhNext, dcNext, c, cPrev, gates, hsize, span, dcPrev, dgates):
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
    "raw T dhOut, raw T dhNext, raw T dcNext, raw T c, raw T cPrev, raw T gates, int32 hsize, int32 span",
    "raw T dcPrev, raw T dgates",
    STEP_UNITS + "const ptrdiff_t at = row * 4 * hsize + unit; "
    "const T* __restrict__ g = &gates[at]; T* __restrict__ dg = &dgates[at]; "
    "const T* __restrict__ dho = &dhOut[first]; const T* __restrict__ dhn = &dhNext[first]; "
    "const T* __restrict__ dcn = &dcNext[first]; const T* __restrict__ cc = &c[first]; "
    "const T* __restrict__ cp = &cPrev[first]; T* __restrict__ dcp = &dcPrev[first]; "
    + UNIT_LOOP +
    "  const T gi = g[k], gf = g[k + hsize], gg = g[k + 2 * hsize], go = g[k + 3 * hsize]; "
    "  const T dh = dho[k] + dhn[k]; const T tc = tanh(cc[k]); "
    "  const T dc = dcn[k] + dh * go * ((T)1 - tc * tc); "
    "  dg[k] = dc * gg * gi * ((T)1 - gi); "
    "  dg[k + hsize] = dc * cp[k] * gf * ((T)1 - gf); "
    "  dg[k + 2 * hsize] = dc * gi * ((T)1 - gg * gg); "
    "  dg[k + 3 * hsize] = dh * tc * go * ((T)1 - go); "
    "  dcp[k] = dc * gf; "
    "}",
    _lstmGradNumpy,
    grain="14 * span",
)


# gru

def _gruForwardNumpy(xproj, hproj, bih, bhh, hPrev, hsize, span, h, gates):
    xr, xz, xn = _blocks(xproj.reshape(-1, 3 * hsize) + bih, 3, hsize)
    hr, hz, hn = _blocks(hproj.reshape(-1, 3 * hsize) + bhh, 3, hsize)
    r, z, n, keptHn = _blocks(gates, 4, hsize)
    r[...], z[...], keptHn[...] = _sigmoid(xr + hr), _sigmoid(xz + hz), hn
    n[...] = numpy.tanh(xn + r * hn)
    numpy.multiply(1 - z, n, out=h)
    h += z * hPrev


gruForwardKer = Elementwise(
    "minidl_gru_forward",
    "raw T xproj, raw T hproj, raw T bih, raw T bhh, raw T hPrev, int32 hsize, int32 span",
    "raw T h, raw T gates",
    STEP_UNITS + "const ptrdiff_t at = row * 3 * hsize + unit, kept = row * 4 * hsize + unit; "
    "const T* __restrict__ x = &xproj[at]; const T* __restrict__ p = &hproj[at]; T* __restrict__ g = &gates[kept]; "
    "const T* __restrict__ bi = &bih[unit]; const T* __restrict__ bh = &bhh[unit]; "
    "const T* __restrict__ hp = &hPrev[first]; T* __restrict__ ho = &h[first]; "
    + UNIT_LOOP +
    f"  const T r = (T)1 / ((T)1 + exp(-{_gateInput(0, 'p')})); "
    f"  const T z = (T)1 / ((T)1 + exp(-{_gateInput(1, 'p')})); "
    "  const T hn = p[k + 2 * hsize] + bh[k + 2 * hsize]; "
    "  const T n = tanh((x[k + 2 * hsize] + bi[k + 2 * hsize]) + r * hn); "
    "  ho[k] = ((T)1 - z) * n + z * hp[k]; "
    "  g[k] = r; g[k + hsize] = z; g[k + 2 * hsize] = n; g[k + 3 * hsize] = hn; "
    "}",
    _gruForwardNumpy,
    grain="18 * span",
)


def _gruGradNumpy(dhOut, dhNext, hPrev, gates, hsize, span, dhPrev, dxgates, dhgates):
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
    "raw T dhOut, raw T dhNext, raw T hPrev, raw T gates, int32 hsize, int32 span",
    "raw T dhPrev, raw T dxgates, raw T dhgates",
    STEP_UNITS + "const ptrdiff_t at = row * 3 * hsize + unit, kept = row * 4 * hsize + unit; "
    "const T* __restrict__ g = &gates[kept]; T* __restrict__ dx = &dxgates[at]; T* __restrict__ dr = &dhgates[at]; "
    "const T* __restrict__ dho = &dhOut[first]; const T* __restrict__ dhn = &dhNext[first]; "
    "const T* __restrict__ hp = &hPrev[first]; T* __restrict__ dhp = &dhPrev[first]; "
    + UNIT_LOOP +
    "  const T r = g[k], z = g[k + hsize], n = g[k + 2 * hsize], hn = g[k + 3 * hsize]; "
    "  const T dh = dho[k] + dhn[k]; "
    "  const T dan = dh * ((T)1 - z) * ((T)1 - n * n); "
    "  const T dar = dan * hn * r * ((T)1 - r); "
    "  const T daz = dh * (hp[k] - n) * z * ((T)1 - z); "
    "  dx[k] = dar; dx[k + hsize] = daz; dx[k + 2 * hsize] = dan; "
    "  dr[k] = dar; dr[k + hsize] = daz; dr[k + 2 * hsize] = dan * r; "
    "  dhp[k] = dh * z; "
    "}",
    _gruGradNumpy,
    grain="14 * span",
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
)
tanhGradKer = Elementwise(
    "minidl_rnn_tanh_grad", "T dhOut, T dhNext, T h", "T dgates",
    "dgates = (dhOut + dhNext) * ((T)1 - h * h)", _tanhGradNumpy,
)

SIMPLE_KERNELS = {"relu": (reluForwardKer, reluGradKer), "tanh": (tanhForwardKer, tanhGradKer)}  # forward, grad
