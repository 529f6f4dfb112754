// What minidl's own vectorized C++ on its threads shares (hostsmallgemm.cpp, nn/directconv.cpp, nn/lstmsteps.cpp,
// nn/attentionheads.cpp; put before their text by hostkernel.loadVectorLibrary): the pool's loop (hostthreads.cpp,
// loaded first), the vector width, fused multiply-adds, as the BLAS those sources stand in for uses them (the kernel
// texts do not fuse them), and the sums of a product's rows in registers.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

typedef void (*Chunk)(void*, ptrdiff_t, ptrdiff_t);
extern "C" void minidl_parallel(ptrdiff_t n, ptrdiff_t values, Chunk chunk, void* context);

#pragma GCC optimize("fp-contract=fast")

// GCC vector extensions of this many bytes: a zmm register with AVX-512, else a ymm.
#if defined(__AVX512F__)
constexpr int VECTOR_BYTES = 64;
#else
constexpr int VECTOR_BYTES = 32;
#endif

// A loop over a block of sums unrolled whole before g++ decides what lives in registers (an array of vector sums
// indexed in loops otherwise stayed in memory: directconv's ∂W 2x slower).
#define UNROLLED _Pragma("GCC unroll 32")

// out[i ldo + v LANES + lane] = Σ_{p < depth} a[i rowStep + p kStep] b[p ldb + v apart + lane] (added to out's values
// with `accumulate`) for R rows and V vectors of columns: per p, V loads of b, R broadcasts of a, R x V multiply-adds
// into vector registers. Each value is one sum over p in order, fused multiply-adds from 0: the same bits whichever
// thread makes it (hostsmallgemm.cpp's products, the LSTM's step loops).
template <typename Real, int R, int V>
inline void rowSums(const Real* a, int64_t rowStep, int64_t kStep, int64_t depth, const Real* b, int64_t ldb,
                    int64_t apart, Real* out, int64_t ldo, bool accumulate) {
  typedef Real Vector __attribute__((vector_size(VECTOR_BYTES)));
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Vector sum[R][V] = {};
  for (int64_t p = 0; p < depth; ++p) {
    Vector bs[V];
    UNROLLED for (int v = 0; v < V; ++v) std::memcpy(&bs[v], b + p * ldb + v * apart, sizeof(Vector));
    UNROLLED for (int i = 0; i < R; ++i) {
      const Real value = a[i * rowStep + p * kStep];
      UNROLLED for (int v = 0; v < V; ++v) sum[i][v] += value * bs[v];
    }
  }
  UNROLLED for (int i = 0; i < R; ++i)
    UNROLLED for (int v = 0; v < V; ++v) {
      Real* to = out + i * ldo + v * LANES;
      Vector result = sum[i][v];
      if (accumulate) {
        Vector before;
        std::memcpy(&before, to, sizeof before);
        result = before + result;
      }
      std::memcpy(to, &result, sizeof result);
    }
}

// a b + c rounded once, whatever contraction the code around allows (the compiler's builtins: no <cmath>, which the
// sources after this header include as <math.h> in their own way).
inline float fusedMultiplyAdd(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
inline double fusedMultiplyAdd(double a, double b, double c) { return __builtin_fma(a, b, c); }

// The same sums, value by value in the same order, for `count` columns from b (fewer than a vector), of `rows` rows:
// each multiply-add fused explicitly, as the vectors' lanes are (left to the compiler's contraction, the tail came out
// unfused once reached through blockProduct: the small products' tails changed bits).
template <typename Real>
inline void rowSumsTail(const Real* a, int64_t rowStep, int64_t kStep, int64_t depth, const Real* b, int64_t ldb,
                        int64_t count, Real* out, int64_t ldo, int64_t rows, bool accumulate) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < count; ++j) {
      Real sum = 0;
      for (int64_t p = 0; p < depth; ++p) sum = fusedMultiplyAdd(a[i * rowStep + p * kStep], b[p * ldb + j], sum);
      Real* to = out + i * ldo + j;
      *to = accumulate ? *to + sum : sum;
    }
}

// out (rows, cols) = a (rows, depth) b (depth, cols) (added to out's values with `accumulate`), a[i, p] at i rowStep +
// p kStep, b's and out's rows ldb and ldo apart: four, two, then one vector of columns at a time, each for R rows at a
// time with R x V = 16 sums in registers (rowSums), the columns past the last whole vector value by value
// (rowSumsTail). Each value is rowSums' one sum in order: the same bits however the columns are blocked.
template <typename Real, int V>
inline void rowBlocks(int64_t rows, int64_t depth, const Real* a, int64_t rowStep, int64_t kStep, const Real* b,
                      int64_t ldb, Real* out, int64_t ldo, bool accumulate) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real), R = 16 / V;
  int64_t i = 0;
  for (; i + R <= rows; i += R)
    rowSums<Real, R, V>(a + i * rowStep, rowStep, kStep, depth, b, ldb, LANES, out + i * ldo, ldo, accumulate);
  for (; i < rows; ++i)
    rowSums<Real, 1, V>(a + i * rowStep, rowStep, kStep, depth, b, ldb, LANES, out + i * ldo, ldo, accumulate);
}

template <typename Real>
void blockProduct(int64_t rows, int64_t cols, int64_t depth, const Real* a, int64_t rowStep, int64_t kStep,
                  const Real* b, int64_t ldb, Real* out, int64_t ldo, bool accumulate) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const int64_t vectors = cols / LANES;
  int64_t v = 0;
  for (; v + 4 <= vectors; v += 4)
    rowBlocks<Real, 4>(rows, depth, a, rowStep, kStep, b + v * LANES, ldb, out + v * LANES, ldo, accumulate);
  for (; v + 2 <= vectors; v += 2)
    rowBlocks<Real, 2>(rows, depth, a, rowStep, kStep, b + v * LANES, ldb, out + v * LANES, ldo, accumulate);
  for (; v < vectors; ++v)
    rowBlocks<Real, 1>(rows, depth, a, rowStep, kStep, b + v * LANES, ldb, out + v * LANES, ldo, accumulate);
  if (cols > vectors * LANES)
    rowSumsTail(a, rowStep, kStep, depth, b + vectors * LANES, ldb, cols - vectors * LANES, out + vectors * LANES, ldo,
                rows, accumulate);
}
