// The step loop of one direction of an LSTM layer on the CPU (loaded by minidl.nn.lstmsteps, hostvectors.h before
// it): every step's recurrent product and its cell in one call, where the RNN made a product call and a kernel call
// per step from Python. A batch row's recurrence reads only its own states, so each of minidl's threads takes groups
// of ROWS batch rows and runs all the steps for them: no thread waits for another between steps (a loop of the
// threads per step over blocks of units, each step reading what the other thread wrote, ran the backward pass 1.5x
// slower).
//
// minidl_lstm_forward(real, numbers, xproj, wHh, bih, bhh, hs, cs, gates), numbers: steps, batch, hsize, reverse.
//   xproj (steps, batch, 4H) the input projections in time order, wHh (4H, H), bih and bhh (4H); hs and cs
//   (steps + 1, batch, H) the states before each step in processing order, [0] given; gates (steps, batch, 4H).
//   Step s (time t = s, or steps - 1 - s with reverse): a = (xproj[t] + bᵢₕ) + (hs[s] Wₕₕᵀ + bₕₕ), i, f, o = σ(a_i, a_f,
//   a_o), g = tanh(a_g), cs[s+1] = f cs[s] + i g, hs[s+1] = o tanh(cs[s+1]), gates[s] = (i, f, g, o).
//   Per step and block of one vector of units: Wₕₕ's rows for the block's four gates, laid out once per call as four
//   vectors per k, summed for ROWS rows in 16 vector registers, and the block's cells take the sums from there.
//
// minidl_lstm_backward(real, numbers, dOut, wHh, cs, gates, dh, dc, dgates, dbias), the same numbers.
//   dOut (steps, batch, H) the gradient of each step's output in time order, wHh (4H, H); dh and dc (batch, H) the
//   gradient of the last step's h and c, turned into those of hs[0] and cs[0]; dgates (steps, batch, 4H), the
//   gradient of each step's a in time order (step s's at t: the products over all steps that read it, with the input
//   in time order, take it as it is; the RNN reverses the states instead, 1 MiB a layer in 0.04 ms where the reversed
//   gates took 4 MiB and 0.31 ms in benchmarks.sequence's bidirectional LSTM); dbias (4H) += Σ dgates over the steps
//   and rows: each group's sum (each step's rows summed first), then the groups' sums in their order (the biases'
//   gradient, summed where it is made: a product by a row of ones took 0.13 ms after). Step s from the last: dh =
//   ∂hs[s+1] (step s+1's dgates Wₕₕ, the given dh for the last), then the cell's derivatives:
//     dh' = dOut[t] + dh, dc' = dc + dh' o (1 - tanh²(c)), ∂a_i = dc' g i (1 - i), ∂a_f = dc' c₋ f (1 - f),
//     ∂a_g = dc' i (1 - g²), ∂a_o = dh' tanh(c) o (1 - o), dc = dc' f.
//   Per step and block of up to four vectors of units: their columns of step s+1's dgates Wₕₕ, then their cells.
//
// The products sum every term in order with fused multiply-adds from 0 (hostvectors.h's rowSums), and the cells are
// the text of rnnkernels' lstm kernels (no fused multiply-adds; exp and tanh from libmvec, its 512-bit variants where
// the machine has them: the last bits may differ from the per-step kernels'): a value does not depend on which
// thread computes it, nor on the number of threads.
#define __FAST_MATH__ 1  // only so that glibc's <math.h> declares libmvec's vector exp and tanh (kernelprelude.h)
#include <math.h>
#undef __FAST_MATH__
#include <memory>

namespace {

constexpr int ROWS = 4;              // batch rows summed at a time: a range's unit of work
constexpr int BACKWARD_VECTORS = 4;  // vectors of units in a block of the backward loop

struct Numbers {
  int64_t steps, batch, hsize, reverse;
};

template <typename Real>
struct Arrays {
  Numbers s;
  const Real* in;       // forward: xproj; backward: dOut
  const Real* weights;  // wHh
  Real* packed;         // forward: wHh's rows by blocks of units (packBlocks)
  const Real* bih;
  const Real* bhh;
  Real* hs;  // backward: dh
  Real* cs;
  Real* gates;
  Real* dc;
  Real* dgates;
  Real* biasParts;  // backward: each group of ROWS rows' sum of dgates (4H values a group)
  int64_t time(int64_t step) const { return s.reverse ? s.steps - 1 - step : step; }
};

// The cells: each product rounded before it is added, as the kernel texts are compiled (hostkernel.FLAGS), and, with
// g++, the whole width of AVX-512 for libmvec's exp and tanh (g++ prefers 256 bits: the forward loop 8% slower).
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

// <math.h>'s own functions, which the vectorizer knows by their libmvec variants (C++'s std::exp(float) is a
// function of <cmath>'s, built with other options than these, so not inlined here, nor vectorized).
inline float expOf(float x) { return expf(x); }
inline double expOf(double x) { return exp(x); }
inline float tanhOf(float x) { return tanhf(x); }
inline double tanhOf(double x) { return tanh(x); }

// Step s's cells of `rows` batch rows from `row`, `count` units from `unit`; pre holds their recurrent sums, a row's
// four gates LANES apart, its rows 4 LANES apart.
template <typename Real>
__attribute__((noinline)) void forwardCells(const Arrays<Real>& w, int64_t s, int64_t row, int64_t rows, int64_t unit,
                                            int64_t count, const Real* pre) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const int64_t H = w.s.hsize, batch = w.s.batch, time = w.time(s);
  for (int64_t i = row; i < row + rows; ++i, pre += 4 * LANES) {
    const int64_t at = i * 4 * H + unit, first = i * H + unit;
    const Real* __restrict__ x = w.in + time * batch * 4 * H + at;
    const Real* __restrict__ r = pre;
    const Real* __restrict__ bi = w.bih + unit;
    const Real* __restrict__ bh = w.bhh + unit;
    const Real* __restrict__ cp = w.cs + s * batch * H + first;
    Real* __restrict__ co = w.cs + (s + 1) * batch * H + first;
    Real* __restrict__ ho = w.hs + (s + 1) * batch * H + first;
    Real* __restrict__ g = w.gates + s * batch * 4 * H + at;
#pragma omp simd
    for (int64_t k = 0; k < count; ++k) {
      const Real gi = (Real)1 / ((Real)1 + expOf(-((x[k] + bi[k]) + (r[k] + bh[k]))));
      const Real gf = (Real)1 / ((Real)1 + expOf(-((x[k + H] + bi[k + H]) + (r[k + LANES] + bh[k + H]))));
      const Real gg = tanhOf((x[k + 2 * H] + bi[k + 2 * H]) + (r[k + 2 * LANES] + bh[k + 2 * H]));
      const Real go = (Real)1 / ((Real)1 + expOf(-((x[k + 3 * H] + bi[k + 3 * H]) + (r[k + 3 * LANES] + bh[k + 3 * H]))));
      const Real cn = gf * cp[k] + gi * gg;
      co[k] = cn;
      ho[k] = go * tanhOf(cn);
      g[k] = gi;
      g[k + H] = gf;
      g[k + 2 * H] = gg;
      g[k + 3 * H] = go;
    }
  }
}

// Step s's cell derivatives of `rows` batch rows from `row`, `count` units from `unit`, dh holding ∂hs[s+1] there;
// their sum over the rows added to `bias` (the rows' group's part of the biases' gradient).
template <typename Real>
__attribute__((noinline)) void backwardCells(const Arrays<Real>& w, int64_t s, int64_t row, int64_t rows,
                                             int64_t unit, int64_t count, Real* bias) {
  const int64_t H = w.s.hsize, batch = w.s.batch, time = w.time(s);
  alignas(64) Real summed[4][BACKWARD_VECTORS * VECTOR_BYTES / sizeof(Real)] = {};
  for (int64_t i = row; i < row + rows; ++i) {
    const int64_t at = i * 4 * H + unit, first = i * H + unit;
    const Real* __restrict__ dho = w.in + time * batch * H + first;
    const Real* __restrict__ dhn = w.hs + first;
    Real* __restrict__ dcn = w.dc + first;
    const Real* __restrict__ cc = w.cs + (s + 1) * batch * H + first;
    const Real* __restrict__ cp = w.cs + s * batch * H + first;
    const Real* __restrict__ g = w.gates + s * batch * 4 * H + at;
    Real* __restrict__ dg = w.dgates + time * batch * 4 * H + at;
#pragma omp simd
    for (int64_t k = 0; k < count; ++k) {
      const Real gi = g[k], gf = g[k + H], gg = g[k + 2 * H], go = g[k + 3 * H];
      const Real dh = dho[k] + dhn[k];
      const Real tc = tanhOf(cc[k]);
      const Real dc = dcn[k] + dh * go * ((Real)1 - tc * tc);
      dg[k] = dc * gg * gi * ((Real)1 - gi);
      dg[k + H] = dc * cp[k] * gf * ((Real)1 - gf);
      dg[k + 2 * H] = dc * gi * ((Real)1 - gg * gg);
      dg[k + 3 * H] = dh * tc * go * ((Real)1 - go);
      dcn[k] = dc * gf;
    }
    for (int gate = 0; gate < 4; ++gate) {
      Real* __restrict__ sum = summed[gate];
#pragma omp simd
      for (int64_t k = 0; k < count; ++k) sum[k] += dg[k + gate * H];
    }
  }
  for (int gate = 0; gate < 4; ++gate) {
    Real* __restrict__ part = bias + gate * H + unit;
#pragma omp simd
    for (int64_t k = 0; k < count; ++k) part[k] += summed[gate][k];
  }
}

#pragma GCC pop_options

// Blocks [begin, end) of one vector of units each: their four gates' rows of Wₕₕ laid out as Wₕₕᵀ's columns, the
// four vectors of a k next to each other (lanes past the last unit zero).
template <typename Real>
void packBlocks(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Arrays<Real>& w = *static_cast<const Arrays<Real>*>(context);
  const int64_t H = w.s.hsize;
  for (ptrdiff_t block = begin; block < end; ++block) {
    Real* packed = w.packed + block * H * 4 * LANES;
    for (int64_t k = 0; k < H; ++k)
      for (int g = 0; g < 4; ++g)
        for (int lane = 0; lane < LANES; ++lane) {
          const int64_t unit = block * LANES + lane;
          packed[(k * 4 + g) * LANES + lane] = unit < H ? w.weights[(g * H + unit) * H + k] : 0;
        }
  }
}

// Every step for the batch rows of groups [begin, end) (ROWS rows a group): a batch row's recurrence reads only its
// own states, so a range runs all its steps without waiting for another. Per step and block of one vector of units,
// the recurrent sums of the block's four gates for ROWS rows at a time, then their cells.
template <typename Real>
void forwardRows(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Arrays<Real>& w = *static_cast<const Arrays<Real>*>(context);
  const int64_t H = w.s.hsize, batch = w.s.batch, blocks = (H + LANES - 1) / LANES;
  const int64_t first = begin * ROWS, last = std::min<int64_t>(end * ROWS, batch);
  alignas(64) Real pre[ROWS][4 * LANES];
  for (int64_t s = 0; s < w.s.steps; ++s) {
    const Real* h = w.hs + s * batch * H;
    for (int64_t block = 0; block < blocks; ++block) {
      const int64_t unit = block * LANES, count = std::min<int64_t>(LANES, H - unit);
      const Real* b = w.packed + block * H * 4 * LANES;
      int64_t row = first;
      for (; row + ROWS <= last; row += ROWS) {
        rowSums<Real, ROWS, 4>(h + row * H, H, 1, H, b, 4 * LANES, LANES, pre[0], 4 * LANES, false);
        forwardCells(w, s, row, ROWS, unit, count, pre[0]);
      }
      for (; row < last; ++row) {
        rowSums<Real, 1, 4>(h + row * H, H, 1, H, b, 4 * LANES, LANES, pre[0], 4 * LANES, false);
        forwardCells(w, s, row, 1, unit, count, pre[0]);
      }
    }
  }
}

// ∂hs[s+1] of `rows` batch rows from `row` for `count` units from `unit`: their columns of step s+1's dgates Wₕₕ.
template <typename Real>
inline void recurrentGradient(const Arrays<Real>& w, int64_t s, int64_t row, int64_t rows, int64_t unit,
                              int64_t count) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const int64_t H = w.s.hsize, width = 4 * H, vectors = count / LANES;
  const Real* a = w.dgates + (w.time(s + 1) * w.s.batch + row) * width;
  const Real* b = w.weights + unit;
  Real* out = w.hs + row * H + unit;
  if (vectors == BACKWARD_VECTORS && rows == ROWS) {
    rowSums<Real, ROWS, BACKWARD_VECTORS>(a, width, 1, width, b, H, LANES, out, H, false);
    return;
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t v = 0; v < vectors; ++v)
      rowSums<Real, 1, 1>(a + i * width, width, 1, width, b + v * LANES, H, 0, out + i * H + v * LANES, H,
                          false);
  if (count % LANES)
    rowSumsTail(a, width, 1, width, b + vectors * LANES, H, count % LANES, out + vectors * LANES, H, rows, false);
}

// Every step, from the last, for the batch rows of groups [begin, end): per step and block of BACKWARD_VECTORS vectors
// of units, ∂hs[s+1] (given for the last step), then the cells' derivatives; last, ∂hs[0].
template <typename Real>
void backwardRows(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int UNITS = BACKWARD_VECTORS * VECTOR_BYTES / sizeof(Real);
  const Arrays<Real>& w = *static_cast<const Arrays<Real>*>(context);
  const int64_t H = w.s.hsize, batch = w.s.batch, blocks = (H + UNITS - 1) / UNITS;
  const int64_t last = std::min<int64_t>(end * ROWS, batch);
  for (int64_t s = w.s.steps - 1; s >= -1; --s)
    for (int64_t block = 0; block < blocks; ++block) {
      const int64_t unit = block * UNITS, count = std::min<int64_t>(UNITS, H - unit);
      for (int64_t group = begin; group < end; ++group) {
        const int64_t row = group * ROWS, rows = std::min<int64_t>(ROWS, last - row);
        if (s + 1 < w.s.steps) recurrentGradient(w, s, row, rows, unit, count);
        if (s >= 0) backwardCells(w, s, row, rows, unit, count, w.biasParts + group * 4 * H);
      }
    }
}

template <typename Real>
void forward(const int64_t* numbers, const void* xproj, const void* wHh, const void* bih, const void* bhh, void* hs,
             void* cs, void* gates) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Arrays<Real> w{};
  std::memcpy(&w.s, numbers, sizeof w.s);
  const int64_t H = w.s.hsize, blocks = (H + LANES - 1) / LANES, groups = (w.s.batch + ROWS - 1) / ROWS;
  std::unique_ptr<Real[]> packed(new Real[blocks * H * 4 * LANES]);  // packBlocks writes every value
  w.in = static_cast<const Real*>(xproj);
  w.weights = static_cast<const Real*>(wHh);
  w.packed = packed.get();
  w.bih = static_cast<const Real*>(bih);
  w.bhh = static_cast<const Real*>(bhh);
  w.hs = static_cast<Real*>(hs);
  w.cs = static_cast<Real*>(cs);
  w.gates = static_cast<Real*>(gates);
  minidl_parallel(blocks, 4 * H * H, packBlocks<Real>, &w);
  minidl_parallel(groups, w.s.steps * w.s.batch * 4 * H * H, forwardRows<Real>, &w);
}

template <typename Real>
void backward(const int64_t* numbers, const void* dOut, const void* wHh, const void* cs, const void* gates, void* dh,
              void* dc, void* dgates, void* dbias) {
  Arrays<Real> w{};
  std::memcpy(&w.s, numbers, sizeof w.s);
  const int64_t H = w.s.hsize, groups = (w.s.batch + ROWS - 1) / ROWS;
  std::unique_ptr<Real[]> biasParts(new Real[groups * 4 * H]());
  w.in = static_cast<const Real*>(dOut);
  w.weights = static_cast<const Real*>(wHh);
  w.cs = const_cast<Real*>(static_cast<const Real*>(cs));
  w.gates = const_cast<Real*>(static_cast<const Real*>(gates));
  w.hs = static_cast<Real*>(dh);
  w.dc = static_cast<Real*>(dc);
  w.dgates = static_cast<Real*>(dgates);
  w.biasParts = biasParts.get();
  minidl_parallel(groups, w.s.steps * w.s.batch * 4 * H * H, backwardRows<Real>, &w);
  Real* bias = static_cast<Real*>(dbias);
  for (int64_t group = 0; group < groups; ++group)  // in the groups' order, whichever threads made them
    for (int64_t j = 0; j < 4 * H; ++j) bias[j] += biasParts[group * 4 * H + j];
}

}  // namespace

extern "C" void minidl_lstm_forward(int real, const int64_t* numbers, const void* xproj, const void* wHh,
                                    const void* bih, const void* bhh, void* hs, void* cs, void* gates) {
  if (real == 8)
    forward<double>(numbers, xproj, wHh, bih, bhh, hs, cs, gates);
  else
    forward<float>(numbers, xproj, wHh, bih, bhh, hs, cs, gates);
}

extern "C" void minidl_lstm_backward(int real, const int64_t* numbers, const void* dOut, const void* wHh,
                                     const void* cs, const void* gates, void* dh, void* dc, void* dgates,
                                     void* dbias) {
  if (real == 8)
    backward<double>(numbers, dOut, wHh, cs, gates, dh, dc, dgates, dbias);
  else
    backward<float>(numbers, dOut, wHh, cs, gates, dh, dc, dgates, dbias);
}
