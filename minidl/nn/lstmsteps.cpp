// The step loop of one direction of an LSTM layer on the CPU (loaded by minidl.nn.lstmsteps, hostvectors.h before
// it): every step's recurrent product and its cell in one call, each step one loop of minidl's threads over blocks
// of hidden units, where the RNN made a product call and a kernel call per step from Python.
//
// minidl_lstm_forward(real, numbers, xproj, wHh, bih, bhh, hs, cs, gates), numbers: steps, batch, hsize, reverse.
//   xproj (steps, batch, 4H) the input projections in time order, wHh (4H, H), bih and bhh (4H); hs and cs
//   (steps + 1, batch, H) the states before each step in processing order, [0] given; gates (steps, batch, 4H).
//   Step s (time t = s, or steps - 1 - s with reverse): a = (xproj[t] + bᵢₕ) + (hs[s] Wₕₕᵀ + bₕₕ), i, f, o = σ(a_i, a_f,
//   a_o), g = tanh(a_g), cs[s+1] = f cs[s] + i g, hs[s+1] = o tanh(cs[s+1]), gates[s] = (i, f, g, o).
//   A block is one vector of units: its four gates' columns of Wₕₕᵀ are four vectors of each row, summed for four
//   batch rows at a time in 16 vector registers, and the cell takes the sums from there.
//
// minidl_lstm_backward(real, numbers, dOut, wHh, cs, gates, dh, dc, dgates, dbias), the same numbers.
//   dOut (steps, batch, H) the gradient of each step's output in time order, wHh (4H, H); dh and dc (batch, H) the
//   gradient of the last step's h and c, turned into those of hs[0] and cs[0]; dgates (steps, batch, 4H), the
//   gradient of each step's a in processing order; dbias (4H) += Σ dgates over the steps and rows, each step's rows
//   summed first (the biases' gradient, summed where it is made: a product by a row of ones took 0.13 ms after).
//   Step s from the last: dh = ∂hs[s+1] (dgates[s+1] Wₕₕ, the given dh for the last), then the cell's derivatives:
//     dh' = dOut[t] + dh, dc' = dc + dh' o (1 - tanh²(c)), ∂a_i = dc' g i (1 - i), ∂a_f = dc' c₋ f (1 - f),
//     ∂a_g = dc' i (1 - g²), ∂a_o = dh' tanh(c) o (1 - o), dc = dc' f.
//   A block is up to four vectors of units: their columns of dgates[s+1] Wₕₕ, then their cells.
//
// The products sum every term in order with fused multiply-adds from 0, as hostsmallgemm.cpp does, and the cells are
// the text of rnnkernels' lstm kernels (no fused multiply-adds; exp and tanh from libmvec, its 512-bit variants where
// the machine has them: the last bits may differ from the per-step kernels'): a value does not depend on which
// thread computes it, nor on the number of threads.
#define __FAST_MATH__ 1  // only so that glibc's <math.h> declares libmvec's vector exp and tanh (kernelprelude.h)
#include <math.h>
#undef __FAST_MATH__
#include <memory>

namespace {

constexpr int ROWS = 4;             // batch rows summed at a time
constexpr int BACKWARD_VECTORS = 4;  // vectors of units in a block of the backward loop

struct Numbers {
  int64_t steps, batch, hsize, reverse;
};

template <typename Real>
struct Arrays {
  Numbers s;
  const Real* in;      // forward: xproj; backward: dOut
  const Real* weights;  // wHh
  Real* packed;         // forward: wHh's rows by blocks of units (packBlocks)
  const Real* bih;
  const Real* bhh;
  Real* hs;  // backward: dh
  Real* cs;
  Real* gates;
  Real* dc;
  Real* dgates;
  Real* dbias;
  int64_t step;  // the step of the current loop, in processing order
};

// out[i ldo + v LANES + lane] = Σ_p a[i lda + p] b[p ldb + v apart + lane] for R rows and V vectors.
template <typename Real, int R, int V>
inline void sums(const Real* a, int64_t lda, int64_t depth, const Real* b, int64_t ldb, int64_t apart, Real* out,
                 int64_t ldo) {
  typedef Real Vector __attribute__((vector_size(VECTOR_BYTES)));
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Vector sum[R][V] = {};
  for (int64_t p = 0; p < depth; ++p) {
    Vector bs[V];
    UNROLLED for (int v = 0; v < V; ++v) std::memcpy(&bs[v], b + p * ldb + v * apart, sizeof(Vector));
    UNROLLED for (int i = 0; i < R; ++i) {
      const Real value = a[i * lda + p];
      UNROLLED for (int v = 0; v < V; ++v) sum[i][v] += value * bs[v];
    }
  }
  UNROLLED for (int i = 0; i < R; ++i)
    UNROLLED for (int v = 0; v < V; ++v) std::memcpy(out + i * ldo + v * LANES, &sum[i][v], sizeof(Vector));
}

// The same sums, value by value in the same order, for `count` (< LANES) columns of each of V column groups.
template <typename Real, int V>
inline void tailSums(const Real* a, int64_t lda, int64_t depth, const Real* b, int64_t ldb, int64_t apart,
                     int64_t count, Real* out, int64_t ldo, int64_t rows) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  for (int64_t i = 0; i < rows; ++i)
    for (int v = 0; v < V; ++v)
      for (int64_t j = 0; j < count; ++j) {
        Real sum = 0;
        for (int64_t p = 0; p < depth; ++p) sum += a[i * lda + p] * b[p * ldb + v * apart + j];
        out[i * ldo + v * LANES + j] = sum;
      }
}

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

// The cells of `rows` batch rows from `row`, `count` units from `unit`; pre holds their recurrent sums, a row's four
// gates LANES apart, its rows 4 LANES apart.
template <typename Real>
__attribute__((noinline)) void forwardCells(const Arrays<Real>& w, int64_t row, int64_t rows, int64_t unit,
                                            int64_t count, const Real* pre) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const int64_t H = w.s.hsize, batch = w.s.batch, s = w.step;
  const int64_t time = w.s.reverse ? w.s.steps - 1 - s : s;
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

// The cell derivatives of every batch row for `count` units from `unit`, dh holding ∂hs[s+1] there; their sum over
// the rows added to dbias.
template <typename Real>
__attribute__((noinline)) void backwardCells(const Arrays<Real>& w, int64_t unit, int64_t count) {
  const int64_t H = w.s.hsize, batch = w.s.batch, s = w.step;
  const int64_t time = w.s.reverse ? w.s.steps - 1 - s : s;
  alignas(64) Real rowSums[4][BACKWARD_VECTORS * VECTOR_BYTES / sizeof(Real)] = {};
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t at = i * 4 * H + unit, first = i * H + unit;
    const Real* __restrict__ dho = w.in + time * batch * H + first;
    const Real* __restrict__ dhn = w.hs + first;
    Real* __restrict__ dcn = w.dc + first;
    const Real* __restrict__ cc = w.cs + (s + 1) * batch * H + first;
    const Real* __restrict__ cp = w.cs + s * batch * H + first;
    const Real* __restrict__ g = w.gates + s * batch * 4 * H + at;
    Real* __restrict__ dg = w.dgates + s * batch * 4 * H + at;
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
      Real* __restrict__ sum = rowSums[gate];
#pragma omp simd
      for (int64_t k = 0; k < count; ++k) sum[k] += dg[k + gate * H];
    }
  }
  for (int gate = 0; gate < 4; ++gate) {
    Real* __restrict__ db = w.dbias + gate * H + unit;
#pragma omp simd
    for (int64_t k = 0; k < count; ++k) db[k] += rowSums[gate][k];
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

// Blocks [begin, end) of one vector of units each: the step's recurrent sums of their four gates, then their cells.
template <typename Real>
void forwardBlocks(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Arrays<Real>& w = *static_cast<const Arrays<Real>*>(context);
  const int64_t H = w.s.hsize, batch = w.s.batch;
  const Real* h = w.hs + w.step * batch * H;
  alignas(64) Real pre[ROWS][4 * LANES];
  for (ptrdiff_t block = begin; block < end; ++block) {
    const int64_t unit = block * LANES, count = std::min<int64_t>(LANES, H - unit);
    const Real* b = w.packed + block * H * 4 * LANES;
    int64_t row = 0;
    for (; row + ROWS <= batch; row += ROWS) {
      sums<Real, ROWS, 4>(h + row * H, H, H, b, 4 * LANES, LANES, pre[0], 4 * LANES);
      forwardCells(w, row, ROWS, unit, count, pre[0]);
    }
    for (; row < batch; ++row) {
      sums<Real, 1, 4>(h + row * H, H, H, b, 4 * LANES, LANES, pre[0], 4 * LANES);
      forwardCells(w, row, 1, unit, count, pre[0]);
    }
  }
}

// Blocks [begin, end) of BACKWARD_VECTORS vectors of units: their columns of dh = dgates[s+1] Wₕₕ (but at the last
// step, whose dh is given), then their cells (none after step 0: the last loop only makes ∂hs[0]).
template <typename Real>
void backwardBlocks(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Arrays<Real>& w = *static_cast<const Arrays<Real>*>(context);
  const int64_t H = w.s.hsize, batch = w.s.batch, width = 4 * H;
  const Real* next = w.dgates + (w.step + 1) * batch * width;
  for (ptrdiff_t block = begin; block < end; ++block) {
    const int64_t unit = block * BACKWARD_VECTORS * LANES;
    const int64_t count = std::min<int64_t>(BACKWARD_VECTORS * LANES, H - unit);
    if (w.step + 1 < w.s.steps) {
      const int64_t vectors = count / LANES, tail = count % LANES;
      for (int64_t row = 0; row < batch; row += ROWS) {
        const int64_t rows = std::min<int64_t>(ROWS, batch - row);
        const Real* a = next + row * width;
        Real* out = w.hs + row * H + unit;
        const Real* b = w.weights + unit;
        if (vectors == BACKWARD_VECTORS && rows == ROWS)
          sums<Real, ROWS, BACKWARD_VECTORS>(a, width, width, b, H, LANES, out, H);
        else
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t v = 0; v < vectors; ++v)
              sums<Real, 1, 1>(a + i * width, width, width, b + v * LANES, H, 0, out + i * H + v * LANES, H);
        if (tail)
          tailSums<Real, 1>(a, width, width, w.weights + unit + vectors * LANES, H, 0, tail,
                            out + vectors * LANES, H, rows);
      }
    }
    if (w.step >= 0) backwardCells(w, unit, count);
  }
}

template <typename Real>
void forward(const int64_t* numbers, const void* xproj, const void* wHh, const void* bih, const void* bhh, void* hs,
             void* cs, void* gates) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Arrays<Real> w{};
  std::memcpy(&w.s, numbers, sizeof w.s);
  const int64_t H = w.s.hsize, blocks = (H + LANES - 1) / LANES, values = w.s.batch * 4 * H * H;
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
  for (w.step = 0; w.step < w.s.steps; ++w.step) minidl_parallel(blocks, values, forwardBlocks<Real>, &w);
}

template <typename Real>
void backward(const int64_t* numbers, const void* dOut, const void* wHh, const void* cs, const void* gates, void* dh,
              void* dc, void* dgates, void* dbias) {
  constexpr int UNITS = BACKWARD_VECTORS * VECTOR_BYTES / sizeof(Real);
  Arrays<Real> w{};
  std::memcpy(&w.s, numbers, sizeof w.s);
  w.in = static_cast<const Real*>(dOut);
  w.weights = static_cast<const Real*>(wHh);
  w.cs = const_cast<Real*>(static_cast<const Real*>(cs));
  w.gates = const_cast<Real*>(static_cast<const Real*>(gates));
  w.hs = static_cast<Real*>(dh);
  w.dc = static_cast<Real*>(dc);
  w.dgates = static_cast<Real*>(dgates);
  w.dbias = static_cast<Real*>(dbias);
  const int64_t blocks = (w.s.hsize + UNITS - 1) / UNITS, values = w.s.batch * 4 * w.s.hsize * w.s.hsize;
  for (w.step = w.s.steps - 1; w.step >= -1; --w.step) minidl_parallel(blocks, values, backwardBlocks<Real>, &w);
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
                                     const void* cs, const void* gates, void* dh, void* dc, void* dgates, void* dbias) {
  if (real == 8)
    backward<double>(numbers, dOut, wHh, cs, gates, dh, dc, dgates, dbias);
  else
    backward<float>(numbers, dOut, wHh, cs, gates, dh, dc, dgates, dbias);
}
