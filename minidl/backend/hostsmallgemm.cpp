// Products of few rows on minidl's threads, without the BLAS (loaded by minidl.backend.hostblas, hostvectors.h
// before it):
//     C = A B        (C += A B with `accumulate`)        row-major, A (m, k) or read transposed, B (k, n)
// minidl_small_gemm(real, numbers, a, b, c): `real` 4 (float) or 8 (double); numbers: m, n, k, lda, ldb, ldc,
// transA (0 or 1), accumulate (0 or 1).
//
// An LSTM step's product (32x128 by 128x512) takes 42-45 µs on one thread, OpenBLAS's single-threaded gemm or this
// kernel alike, but split in two for OpenBLAS 30-37 µs: each half packs its part of B anew at every call. Here each
// thread takes a contiguous range of C's column blocks (COLUMNS vectors wide) and, for each block of 4 rows, sums
// every k into 4 x COLUMNS vector registers (hostvectors.h's blockProduct): per k, COLUMNS loads of B's row, 4
// broadcasts of A, 16 multiply-adds. B is read where it lies (a block's k rows of 256 bytes stay in the core's cache over the row
// blocks), so nothing is packed: 25-29 µs on two threads. Each
// value is one sum over k in order, fused multiply-adds from 0, then added to C with `accumulate`: the same bits
// whichever thread runs it.

namespace {

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

// Column blocks [begin, end) of COLUMNS vectors (hostvectors.h's blockProduct for each); the last block takes what is
// left in whole vectors, and the block after the last, if any, the tail.
template <typename Real>
void products(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Call<Real>& call = *static_cast<const Call<Real>*>(context);
  const Numbers& s = call.s;
  const int64_t rowStep = s.transA ? 1 : s.lda, kStep = s.transA ? s.lda : 1;  // A[i, p] at i rowStep + p kStep
  const int64_t vectors = s.n / LANES;
  for (ptrdiff_t index = begin; index < end; ++index) {
    const bool tail = index * COLUMNS >= vectors;
    const int64_t first = tail ? vectors * LANES : index * COLUMNS * LANES;  // the block's first column
    const int64_t count = tail ? s.n - first : std::min<int64_t>(COLUMNS, vectors - index * COLUMNS) * LANES;
    blockProduct(s.m, count, s.k, call.a, rowStep, kStep, call.b + first, s.ldb, call.c + first, s.ldc, s.accumulate);
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
