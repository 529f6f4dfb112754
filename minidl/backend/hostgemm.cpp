// Matrix products on minidl's threads (loaded by minidl.backend.hostblas, after hostthreads.cpp): a strided batch,
// and one product split in rows or columns.
//
// minidl_gemm_batch(real, integer, gemm, localThreads, numbers, a, b, c, beta, producer) computes, for n < count,
//     C[n] = A[n] B[n] + beta C[n]      (row-major; A[n] at a + (n / inner) outerA + (n % inner) strideA elements,
//                                        B[n] and C[n] likewise: a batch walked by one stride, or by two)
// through `gemm`, the cblas ?gemm of the BLAS that NumPy loaded: minidl_parallel gives each thread a contiguous
// share of the batch, and each thread first asks that BLAS to run single-threaded on it (`localThreads`, OpenBLAS's
// openblas_set_num_threads_local). A convolution's small products per image then run two at a time instead of each
// split over both cores. In NumPy's OpenBLAS (pthreads) that count is the process's, not the thread's: the caller
// sets it before the loop and puts back what it replaced after, once every thread is done (a worker putting back its
// own, in a race with the caller, left NumPy's products single-threaded now and then); where it is the thread's,
// minidl's workers keep 1, as they should. `real`: 4 (float) or 8 (double); `integer`: the BLAS's integer width in
// bytes, 4 or 8. `numbers`: transA, transB (CBLAS's 111 or 112), m, n, k, lda, ldb, ldc, strideA, strideB, strideC,
// count, inner, outerA, outerB, outerC.
//
// With a `producer` (null: none), B[n] (A[n] where its `operand` is 0) is made first by a compiled kernel (an im2col
// of image n) into a buffer of the thread's own, kept for the thread's later batches, and the product reads it there:
// the kernel's arguments are the producer's, but for its `input` argument, b + n strideB (a + n strideA: the image),
// and its `output`, the buffer. A convolution's columns are then never stored whole (32 images of 16 maps of 32x32:
// 19 MB, written and read back through memory), each image's staying in the core's cache between the kernel and its
// product.
//
// minidl_gemm_split(real, integer, gemm, localThreads, numbers, a, b, c, beta) computes one product,
//     C = A B + beta C      (row-major; numbers: transA, transB, m, n, k, lda, ldb, ldc, axis)
// each of minidl's threads taking a contiguous range of C's rows (axis 0) or columns (axis 1) and multiplying it with
// one call of the same single-threaded gemm, A's rows (B's columns) of that range by all of B (A). NumPy's matmul would
// run the product on the BLAS's own threads, which spin after it (OpenBLAS's worker burned 96% of a core for the 50 ms
// after a product, about 0.1 s in all) and so took part of a core from minidl's next kernels; made here, the BLAS's
// threads stay asleep. Each element is one sum made by the gemm, but the gemm picks its kernels by the sizes it is
// given, so a range's sums may round otherwise than the whole product's (5e-5 at most in float32, sums of up to 400
// terms of order 1): the same bits run after run for a thread count, as with OpenBLAS's own threads, whose products
// also round otherwise than one thread's.
#include <cstddef>
#include <cstdint>
#include <vector>

typedef void (*Chunk)(void*, ptrdiff_t, ptrdiff_t);
extern "C" void minidl_parallel(ptrdiff_t n, ptrdiff_t values, Chunk chunk, void* context);

namespace {

typedef int (*LocalThreads)(int);
typedef void (*Kernel)(ptrdiff_t, void* const*, const ptrdiff_t*);

struct Producer {  // laid out as hostblas.Producer
  Kernel kernel;
  void* const* args;
  int64_t count, input, output, size, bufferBytes, operand;
  const ptrdiff_t* rawShapes;
};

struct Batch {  // a batch's, or a split product's (producer null)
  void* gemm;
  LocalThreads localThreads;
  const int64_t* numbers;
  const char* a;
  const char* b;
  char* c;
  double beta;
  const Producer* producer;
};

template <typename Int, typename Real>
void products(void* context, ptrdiff_t begin, ptrdiff_t end) {
  typedef void (*Gemm)(int, int, int, Int, Int, Int, Real, const Real*, Int, const Real*, Int, Real, Real*, Int);
  const Batch& batch = *static_cast<const Batch*>(context);
  const Gemm gemm = reinterpret_cast<Gemm>(batch.gemm);
  const int64_t* number = batch.numbers;
  const Real* a = reinterpret_cast<const Real*>(batch.a);
  const Real* b = reinterpret_cast<const Real*>(batch.b);
  Real* c = reinterpret_cast<Real*>(batch.c);
  const Producer* producer = batch.producer;
  thread_local std::vector<Real> buffer;
  std::vector<void*> args;
  if (producer != nullptr) {
    buffer.resize(static_cast<size_t>(producer->bufferBytes) / sizeof(Real));
    args.assign(producer->args, producer->args + producer->count);
    args[producer->output] = buffer.data();
  }
  batch.localThreads(1);
  for (ptrdiff_t index = begin; index < end; ++index) {
    const int64_t outer = index / number[12], inner = index % number[12];
    const Real* an = a + outer * number[13] + inner * number[8];
    const Real* bn = b + outer * number[14] + inner * number[9];
    if (producer != nullptr) {
      const Real*& made = producer->operand == 0 ? an : bn;
      args[producer->input] = const_cast<Real*>(made);
      producer->kernel(static_cast<ptrdiff_t>(producer->size), args.data(), producer->rawShapes);
      made = buffer.data();
    }
    gemm(101, static_cast<int>(number[0]), static_cast<int>(number[1]), Int(number[2]), Int(number[3]),
         Int(number[4]), Real(1), an, Int(number[5]), bn, Int(number[6]), Real(batch.beta),
         c + outer * number[15] + inner * number[10], Int(number[7]));
  }
}

template <typename Int, typename Real>
void splitProduct(void* context, ptrdiff_t begin, ptrdiff_t end) {
  typedef void (*Gemm)(int, int, int, Int, Int, Int, Real, const Real*, Int, const Real*, Int, Real, Real*, Int);
  const Batch& split = *static_cast<const Batch*>(context);
  const int64_t* number = split.numbers;
  const bool transA = number[0] == 112, transB = number[1] == 112, rows = number[8] == 0;
  const Real* a = reinterpret_cast<const Real*>(split.a);
  const Real* b = reinterpret_cast<const Real*>(split.b);
  Real* c = reinterpret_cast<Real*>(split.c);
  int64_t m = number[2], n = number[3];
  if (rows) {
    a += begin * (transA ? 1 : number[5]);
    c += begin * number[7];
    m = end - begin;
  } else {
    b += begin * (transB ? number[6] : 1);
    c += begin;
    n = end - begin;
  }
  split.localThreads(1);
  reinterpret_cast<Gemm>(split.gemm)(101, static_cast<int>(number[0]), static_cast<int>(number[1]), Int(m), Int(n),
                                     Int(number[4]), Real(1), a, Int(number[5]), b, Int(number[6]), Real(split.beta),
                                     c, Int(number[7]));
}

// chunk over [0, n) on minidl's threads, the BLAS asked to run single-threaded meanwhile: the caller sets its count
// once and puts back what it replaced when every thread is done (see above).
void onThreads(Batch& call, ptrdiff_t n, Chunk chunk) {
  const int before = call.localThreads(1);
  minidl_parallel(n, PTRDIFF_MAX, chunk, &call);  // always shared: hostblas decides which products come here
  call.localThreads(before);
}

}  // namespace

extern "C" void minidl_gemm_split(int real, int integer, void* gemm, void* localThreads, const int64_t* numbers,
                                  const void* a, const void* b, void* c, double beta) {
  Batch split{gemm, reinterpret_cast<LocalThreads>(localThreads), numbers, static_cast<const char*>(a),
              static_cast<const char*>(b), static_cast<char*>(c), beta, nullptr};
  Chunk chunk = real == 8 ? (integer == 8 ? splitProduct<int64_t, double> : splitProduct<int32_t, double>)
                          : (integer == 8 ? splitProduct<int64_t, float> : splitProduct<int32_t, float>);
  onThreads(split, static_cast<ptrdiff_t>(numbers[8] == 0 ? numbers[2] : numbers[3]), chunk);
}

extern "C" void minidl_gemm_batch(int real, int integer, void* gemm, void* localThreads, const int64_t* numbers,
                                  const void* a, const void* b, void* c, double beta, const void* producer) {
  Batch batch{gemm, reinterpret_cast<LocalThreads>(localThreads), numbers, static_cast<const char*>(a),
              static_cast<const char*>(b), static_cast<char*>(c), beta, static_cast<const Producer*>(producer)};
  Chunk chunk = real == 8 ? (integer == 8 ? products<int64_t, double> : products<int32_t, double>)
                          : (integer == 8 ? products<int64_t, float> : products<int32_t, float>);
  onThreads(batch, static_cast<ptrdiff_t>(numbers[11]), chunk);
}
