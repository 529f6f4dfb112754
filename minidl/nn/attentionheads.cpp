// Self-attention one (sequence, head) at a time on the CPU (loaded by minidl.nn.attentionheads, hostvectors.h before
// it): a head's scores, softmax and context in one pass, and its backward in one pass, where MultiHeadAttention
// otherwise makes a batched product, a softmax kernel and a batched product (and five calls backward), each writing
// all heads' scores or probabilities (2 MiB for 32 sequences of 4 heads of 64 steps, float32) and reading them again.
// Here a head's scores stay in the core's cache between the pieces, and each of minidl's threads takes whole heads.
//
// Layouts (T steps, B sequences, H heads of d features, E = H d; a row of qkv is one step of one sequence):
//   qkv (T B, 3 E) the projections q, k, v side by side; head h of sequence b: q[t] = qkv[t B + b, h d : h d + d],
//   k at E further, v at 2 E; padding (B, T) bytes, true where a key is padding (null: none); probs (B, H, T, T);
//   context and dcontext (T B, E) with head h at columns h d; dqkv laid out as qkv.
//
// minidl_attention_forward(real, numbers, qkv, padding, probs, context), numbers: T, B, H, d, causal.
//   s = q kᵀ / sqrt(d); P = softmax of s over the keys key j of query t sees (not j > t where causal, not padding; a
//   row that sees none is 0), the row's largest visible score subtracted before exp; context = P v.
// minidl_attention_backward(real, numbers, qkv, probs, dcontext, dqkv), the same numbers.
//   ∂P = ∂context vᵀ, ∂v = Pᵀ ∂context, ∂s = P (∂P - Σ_j ∂P P) / sqrt(d) row by row, ∂q = ∂s k, ∂k = ∂sᵀ q.
//
// The products sum every term in order with fused multiply-adds from 0 (hostvectors.h's blockProduct, as the small
// products), the softmax fuses none and its exp is libmvec's: a value does not depend on which thread computes it, nor
// on the number of threads; its last bits may differ from the batched products' and the softmax kernel's.
#define __FAST_MATH__ 1  // only so that glibc's <math.h> declares libmvec's vector exp (kernelprelude.h)
#include <math.h>
#undef __FAST_MATH__
#include <memory>

namespace {

// The softmax with each product rounded before it is added, as the kernel texts are compiled (hostkernel.FLAGS), and,
// with g++, its loops the whole width of AVX-512 for libmvec's exp (g++ prefers 256 bits).
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

struct Numbers {
  int64_t steps, batch, heads, size, causal;
};

template <typename Real>
struct Heads {
  Numbers s;
  int64_t padded;  // a row of scores: T keys rounded up to whole vectors
  Real scale;      // 1 / sqrt(d)
  const Real* qkv;
  const unsigned char* padding;  // null: no padding
  Real* probs;
  const Real* dcontext;  // backward
  Real* out;             // forward: context; backward: dqkv
};

inline float expOf(float x) { return expf(x); }
inline double expOf(double x) { return exp(x); }

// Where one head's arrays start and how far apart their steps are.
struct Head {
  int64_t step;      // qkv's (and dqkv's) rows of one sequence, one step apart: B 3E values
  int64_t outStep;   // context's rows of one sequence: B E values
  int64_t q, k, v;   // offsets of the head's first q, k and v in qkv (and dqkv)
  int64_t context;   // offset of its first context value (and ∂context)
  int64_t probs;     // offset of its T x T probabilities

  Head(const Numbers& s, int64_t index) {
    const int64_t b = index / s.heads, h = index % s.heads, E = s.heads * s.size;
    step = s.batch * 3 * E;
    outStep = s.batch * E;
    q = b * 3 * E + h * s.size;
    k = q + E;
    v = q + 2 * E;
    context = b * E + h * s.size;
    probs = index * s.steps * s.steps;
  }
};

// A head's T rows of d values (its q, k or v, or ∂context), `step` apart where they lie, copied side by side: the
// products then read one block from the core's cache, and kᵀ and vᵀ are made from there.
template <typename Real>
void packed(const Real* from, int64_t step, int64_t steps, int64_t size, Real* to) {
  for (int64_t j = 0; j < steps; ++j) std::memcpy(to + j * size, from + j * step, size * sizeof(Real));
}

// kᵀ's (or vᵀ's) d rows of T values, `padded` apart (the pads past T stay 0), from the head's packed rows: the keys
// as B's columns.
template <typename Real>
void transposed(const Real* rows, int64_t steps, int64_t size, Real* to, int64_t padded) {
  for (int64_t j = 0; j < steps; ++j)
    for (int64_t p = 0; p < size; ++p) to[p * padded + j] = rows[j * size + p];
}

// One row of probabilities (`keys` values) from its scores (`columns` of them, a whole number of vectors), over the
// keys j < seen where `open` is 1 (not padding); `anyOpen`: some key j < seen is open. Three branch-free loops over the
// vectors up to key `seen`, which the compiler vectorizes (exp from libmvec): the maximum of the visible keys' scores
// (a NaN score is not the maximum, but its exp makes the sum NaN, and so the row's); exp of each scaled score less the
// maximum (exp(0) for a hidden key, then 0: libmvec takes lanes of -inf one by one to the scalar exp), and their sum;
// the quotients (0 for a hidden key, though the sum be NaN). Key j < seen is told by `before[j]` (1 up to `seen`, then
// 0), not by comparing j with seen: g++ split such loops at `seen` and ran the part past it scalar. `open` and `before`
// are of the scores' type, and the index an int, so that the loops' vectors hold as many keys as a vector of scores
// (bytes took four vectors of scores a step, and a row of 64 keys ran scalar).
template <typename Real>
void softmaxRow(Real* scores, Real* probs, int keys, int columns, int seen, const Real* open, const Real* before,
                bool anyOpen, Real scale) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const int span = std::min((seen + LANES - 1) / LANES * LANES, columns);
  Real top = -INFINITY;
#pragma omp simd reduction(max : top)
  for (int j = 0; j < span; ++j) {
    const Real s = open[j] != 0 && before[j] != 0 ? scores[j] * scale : -INFINITY;
    top = s > top ? s : top;
  }
  Real sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < span; ++j) {
    const bool visible = open[j] != 0 && before[j] != 0;
    const Real e = expOf(visible ? scores[j] * scale - top : 0);
    scores[j] = visible ? e : 0;
    sum += scores[j];
  }
  const Real inverse = anyOpen ? 1 / sum : 0;
#pragma omp simd
  for (int j = 0; j < span; ++j) scores[j] = open[j] != 0 && before[j] != 0 ? scores[j] * inverse : 0;
  const int written = std::min(span, keys);
  std::memcpy(probs, scores, written * sizeof(Real));
  std::fill(probs + written, probs + keys, Real(0));
}

constexpr int64_t BAND = 16;  // queries whose scores are made at a time

// The band of queries from `first`: its rows, the keys they see at most (those before the band's end with a causal
// mask), and the columns of scores made for them (those keys' whole vectors).
struct Band {
  int64_t rows, keysSeen, columns;

  Band(const Numbers& s, int64_t first, int64_t padded, int64_t lanes) {
    rows = std::min<int64_t>(BAND, s.steps - first);
    keysSeen = s.causal ? first + rows : s.steps;
    columns = std::min(padded, (keysSeen + lanes - 1) / lanes * lanes);
  }
};

template <typename Real>
void forwardHeads(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Heads<Real>& w = *static_cast<const Heads<Real>*>(context);
  const int64_t T = w.s.steps, d = w.s.size, padded = w.padded;
  std::unique_ptr<Real[]> keys(new Real[d * padded]()), scores(new Real[BAND * padded]), queries(new Real[T * d]),
      values(new Real[T * d]);
  std::unique_ptr<Real[]> open(new Real[padded]), ones(new Real[2 * padded]);
  std::fill(open.get(), open.get() + padded, Real(1));
  std::fill(ones.get(), ones.get() + padded, Real(1));  // then padded zeros: `before` for any seen
  std::fill(ones.get() + padded, ones.get() + 2 * padded, Real(0));
  for (ptrdiff_t index = begin; index < end; ++index) {
    const Head at(w.s, index);
    int64_t firstOpen = 0;  // the first key that is not padding (T: none)
    if (w.padding) {
      for (int64_t j = 0; j < T; ++j) open[j] = w.padding[index / w.s.heads * T + j] ? 0 : 1;
      while (firstOpen < T && open[firstOpen] == 0) ++firstOpen;
    }
    packed(w.qkv + at.q, at.step, T, d, queries.get());
    packed(w.qkv + at.k, at.step, T, d, values.get());  // k's rows, until they are transposed
    transposed(values.get(), T, d, keys.get(), padded);
    packed(w.qkv + at.v, at.step, T, d, values.get());
    Real* probs = w.probs + at.probs;
    // By bands of BAND queries, whose scores alone are kept: with a causal mask a band's queries see only the keys
    // before the band's end, so its scores are made for those keys' vectors only, and its context sums only their
    // values (the probabilities of the keys past them are 0: the sums are the same, but for a value of inf or NaN past
    // them, which then is not read).
    for (int64_t first = 0; first < T; first += BAND) {
      const Band band(w.s, first, padded, LANES);
      blockProduct(band.rows, band.columns, d, queries.get() + first * d, d, 1, keys.get(), padded, scores.get(),
                   padded, false);
      for (int64_t t = first; t < first + band.rows; ++t) {
        const int64_t seen = w.s.causal ? t + 1 : T;
        softmaxRow<Real>(scores.get() + (t - first) * padded, probs + t * T, T, band.columns, seen, open.get(),
                         ones.get() + padded - seen, firstOpen < seen, w.scale);
      }
      blockProduct(band.rows, d, band.keysSeen, probs + first * T, T, 1, values.get(), d,
                   w.out + at.context + first * at.outStep, at.outStep, false);
    }
  }
}

template <typename Real>
void backwardHeads(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Heads<Real>& w = *static_cast<const Heads<Real>*>(context);
  const int64_t T = w.s.steps, d = w.s.size, padded = w.padded;
  std::unique_ptr<Real[]> values(new Real[d * padded]()), grads(new Real[T * padded]), queries(new Real[T * d]),
      keys(new Real[T * d]), dcontext(new Real[T * d]);
  for (ptrdiff_t index = begin; index < end; ++index) {
    const Head at(w.s, index);
    const Real* probs = w.probs + at.probs;
    packed(w.qkv + at.q, at.step, T, d, queries.get());
    packed(w.qkv + at.v, at.step, T, d, keys.get());  // v's rows, until they are transposed
    transposed(keys.get(), T, d, values.get(), padded);
    packed(w.qkv + at.k, at.step, T, d, keys.get());
    packed(w.dcontext + at.context, at.outStep, T, d, dcontext.get());
    // By bands of BAND queries, as forward: with a causal mask a band's ∂P and ∂s are made for the keys before its
    // end only (past them P is 0, and so ∂s), ∂q sums over those keys, and ∂k and ∂v of a band of keys over the
    // queries from the band's start.
    for (int64_t first = 0; first < T; first += BAND) {
      const Band band(w.s, first, padded, LANES);
      const int64_t width = std::min(band.columns, T);
      Real* rows = grads.get() + first * padded;
      blockProduct(band.rows, band.columns, d, dcontext.get() + first * d, d, 1, values.get(), padded, rows, padded,
                   false);  // ∂P
      for (int64_t t = 0; t < band.rows; ++t) {  // ∂s in place of ∂P
        Real* row = rows + t * padded;
        const Real* p = probs + (first + t) * T;
        Real dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < width; ++j) dot += row[j] * p[j];
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) row[j] = w.scale * p[j] * (row[j] - dot);
      }
      blockProduct(band.rows, d, band.keysSeen, rows, padded, 1, keys.get(), d, w.out + at.q + first * at.step,
                   at.step, false);  // ∂q = ∂s k
    }
    for (int64_t first = 0; first < T; first += BAND) {  // ∂v = Pᵀ ∂context and ∂k = ∂sᵀ q, by bands of keys
      const int64_t rows = std::min<int64_t>(BAND, T - first), from = w.s.causal ? first : 0;
      blockProduct(rows, d, T - from, probs + from * T + first, 1, T, dcontext.get() + from * d, d,
                   w.out + at.v + first * at.step, at.step, false);
      blockProduct(rows, d, T - from, grads.get() + from * padded + first, 1, padded, queries.get() + from * d, d,
                   w.out + at.k + first * at.step, at.step, false);
    }
  }
}

#pragma GCC pop_options

template <typename Real>
void run(const int64_t* numbers, Chunk heads, const void* qkv, const void* padding, void* probs,
         const void* dcontext, void* out) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Heads<Real> w{};
  std::memcpy(&w.s, numbers, sizeof w.s);
  w.padded = (w.s.steps + LANES - 1) / LANES * LANES;
  w.scale = static_cast<Real>(1 / sqrt(static_cast<double>(w.s.size)));
  w.qkv = static_cast<const Real*>(qkv);
  w.padding = static_cast<const unsigned char*>(padding);
  w.probs = static_cast<Real*>(probs);
  w.dcontext = static_cast<const Real*>(dcontext);
  w.out = static_cast<Real*>(out);
  const int64_t count = w.s.batch * w.s.heads;
  minidl_parallel(count, count * w.s.steps * w.s.steps * w.s.size, heads, &w);
}

}  // namespace

extern "C" void minidl_attention_forward(int real, const int64_t* numbers, const void* qkv, const void* padding,
                                         void* probs, void* context) {
  if (real == 8)
    run<double>(numbers, forwardHeads<double>, qkv, padding, probs, nullptr, context);
  else
    run<float>(numbers, forwardHeads<float>, qkv, padding, probs, nullptr, context);
}

extern "C" void minidl_attention_backward(int real, const int64_t* numbers, const void* qkv, const void* probs,
                                          const void* dcontext, void* dqkv) {
  if (real == 8)
    run<double>(numbers, backwardHeads<double>, qkv, nullptr, const_cast<void*>(probs), dcontext, dqkv);
  else
    run<float>(numbers, backwardHeads<float>, qkv, nullptr, const_cast<void*>(probs), dcontext, dqkv);
}
