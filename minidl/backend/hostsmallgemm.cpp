// Products of few rows on minidl's threads, without the BLAS (loaded by minidl.backend.hostblas, hostvectors.h
// before it):
//     C = A B        (C += A B with `accumulate`)        row-major, A (m, k) or read transposed, B (k, n)
// minidl_small_gemm(real, numbers, a, b, c): `real` 4 (float) or 8 (double); numbers: m, n, k, lda, ldb, ldc,
// transA (0 or 1), accumulate (0 or 1).
//
// An LSTM step's product (32x128 by 128x512) takes 42-45 µs on one thread, OpenBLAS's single-threaded gemm or this
// kernel alike, but split in two for OpenBLAS 30-37 µs: each half packs its part of B anew at every call. Here each
// thread takes a contiguous range of C's column blocks (COLUMNS vectors wide) and, for each block of ROWS rows, sums
// every k into ROWS x COLUMNS vector registers: per k, COLUMNS loads of B's row, ROWS broadcasts of A, ROWS x COLUMNS
// multiply-adds. B is read where it lies (a block's k rows of 256 bytes stay in the core's cache over the row
// blocks), so nothing is packed: 25-29 µs on two threads. Each
// value is one sum over k in order, fused multiply-adds from 0, then added to C with `accumulate`: the same bits
// whichever thread runs it.

namespace {

constexpr int ROWS = 4;     // rows of C summed at a time
constexpr int COLUMNS = 4;  // vectors of C's columns summed at a time: a column block

struct Numbers {
  int64_t m, n, k, lda, ldb, ldc, transA, accumulate;
};

template <typename Real>
struct Call {
  Numbers s;
  const Real* a;
  const Real* b;
  Real* c;
};

// C[rows R, VECTORS vectors of columns from `column`] of rows `row`...: Σ_p A[i, p] B[p, j] over all k (rowSums).
template <typename Real, int R, int VECTORS>
inline void block(const Call<Real>& call, int64_t row, int64_t column) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Numbers& s = call.s;
  const int64_t rowStep = s.transA ? 1 : s.lda, kStep = s.transA ? s.lda : 1;  // A[i, p] at i rowStep + p kStep
  rowSums<Real, R, VECTORS>(call.a + row * rowStep, rowStep, kStep, s.k, call.b + column, s.ldb, LANES,
                            call.c + row * s.ldc + column, s.ldc, s.accumulate);
}

// The columns past the last whole vector, value by value, in the same order.
template <typename Real>
inline void columnTail(const Call<Real>& call, int64_t first) {
  const Numbers& s = call.s;
  const int64_t rowStep = s.transA ? 1 : s.lda, kStep = s.transA ? s.lda : 1;
  rowSumsTail(call.a, rowStep, kStep, s.k, call.b + first, s.ldb, s.n - first, call.c + first, s.ldc, s.m,
              s.accumulate);
}

template <typename Real, int VECTORS>
inline void columns(const Call<Real>& call, int64_t column) {
  int64_t row = 0;
  for (; row + ROWS <= call.s.m; row += ROWS) block<Real, ROWS, VECTORS>(call, row, column);
  for (; row < call.s.m; ++row) block<Real, 1, VECTORS>(call, row, column);
}

// Column blocks [begin, end) of COLUMNS vectors; the last block takes what is left in whole vectors (and the block
// after the last, if any, the tail).
template <typename Real>
void products(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Call<Real>& call = *static_cast<const Call<Real>*>(context);
  const int64_t vectors = call.s.n / LANES;
  for (ptrdiff_t index = begin; index < end; ++index) {
    const int64_t first = index * COLUMNS;  // in vectors
    if (first >= vectors) {
      columnTail(call, vectors * LANES);
      continue;
    }
    const int64_t count = std::min<int64_t>(COLUMNS, vectors - first);
    for (int64_t v = 0; v < count;) {
      if (count - v >= 4) {
        columns<Real, 4>(call, (first + v) * LANES);
        v += 4;
      } else if (count - v >= 2) {
        columns<Real, 2>(call, (first + v) * LANES);
        v += 2;
      } else {
        columns<Real, 1>(call, (first + v) * LANES);
        v += 1;
      }
    }
  }
}

template <typename Real>
void run(const int64_t* numbers, const void* a, const void* b, void* c) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Call<Real> call;
  std::memcpy(&call.s, numbers, sizeof call.s);
  call.a = static_cast<const Real*>(a);
  call.b = static_cast<const Real*>(b);
  call.c = static_cast<Real*>(c);
  const int64_t vectors = call.s.n / LANES, blocks = (vectors + COLUMNS - 1) / COLUMNS;
  const int64_t tail = call.s.n % LANES ? 1 : 0;
  minidl_parallel(static_cast<ptrdiff_t>(blocks + tail), static_cast<ptrdiff_t>(call.s.m * call.s.n * call.s.k),
                  products<Real>, &call);
}

}  // namespace

extern "C" void minidl_small_gemm(int real, const int64_t* numbers, const void* a, const void* b, void* c) {
  if (real == 8)
    run<double>(numbers, a, b, c);
  else
    run<float>(numbers, a, b, c);
}
