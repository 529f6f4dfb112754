// What the CUDA text of an Elementwise kernel may assume, as cupy.ElementwiseKernel provides it: CArray (raw
// arguments), CIndexer (_ind), float16 and the CUDA_FOR-style loop's types, for the host path compiled by g++,
// where it also supplies the CUDA device vocabulary the host lacks (on the GPU, CuPy brings its own headers).
#ifndef __CUDACC__
// Only so that glibc's <math.h> declares its vector functions (libmvec: exp, tanh, log1p... 4 ulp at most)
// to the vectorizer, which otherwise calls the scalar ones: tanh and gelu ran 20-40x slower than NumPy's.
#define __FAST_MATH__ 1
#endif
#include <math.h>
#include <stddef.h>
#ifndef __CUDACC__
#undef __FAST_MATH__
#endif

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define MINIDL_HALF __half
#else
#ifdef __FLT16_MAX__  // _Float16: g++ >= 12 and clang >= 15 on x86-64, and on ARM; float16 kernels need it
#define MINIDL_HALF _Float16
#endif
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))

template <typename T> inline T min(T a, T b) { return b < a ? b : a; }
template <typename T> inline T max(T a, T b) { return a < b ? b : a; }
// CUDA's min and max of floating values are fmin and fmax: a NaN loses to a number. The host path does the same.
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline float rsqrt(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }

template <typename T> inline T atomicAdd(T* address, T value) {  // a loop's ranges run on several threads
  T old = *address, sum;
  do {
    sum = old + value;
  } while (!__atomic_compare_exchange(address, &old, &sum, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}

// The kernel's loop over [0, n), given as loop(begin, end), reading or writing `values` values in all: on minidl's
// threads (hostthreads.cpp, loaded before any kernel) when they are enough to share, else on the caller's.
extern "C" void minidl_parallel(ptrdiff_t n, ptrdiff_t values, void (*chunk)(void*, ptrdiff_t, ptrdiff_t),
                                void* context);
template <typename Loop> inline void minidlFor(ptrdiff_t n, ptrdiff_t values, Loop& loop) {
  minidl_parallel(
      n, values, [](void* context, ptrdiff_t begin, ptrdiff_t end) { (*static_cast<Loop*>(context))(begin, end); },
      &loop);
}
#endif

// C-contiguous array of ndim dimensions: a[flat index], a[{i, j, ...}] (an index per dimension), size(), shape().
template <typename T, int ndim> class CArray {
  T* data_;
  ptrdiff_t size_;
  ptrdiff_t shape_[ndim];

 public:
  __host__ __device__ CArray(void* data, const ptrdiff_t* shape) : data_(static_cast<T*>(data)), size_(1) {
    for (int dim = 0; dim < ndim; ++dim) {
      shape_[dim] = shape[dim];
      size_ *= shape[dim];
    }
  }
  __device__ ptrdiff_t size() const { return size_; }
  __device__ const ptrdiff_t* shape() const { return shape_; }
  __device__ T& operator[](ptrdiff_t i) { return data_[i]; }
  __device__ const T& operator[](ptrdiff_t i) const { return data_[i]; }
  template <typename Int> __device__ T& operator[](const Int (&index)[ndim]) { return data_[flat(index)]; }
  template <typename Int> __device__ const T& operator[](const Int (&index)[ndim]) const {
    return data_[flat(index)];
  }

 private:
  template <typename Int> __device__ ptrdiff_t flat(const Int (&index)[ndim]) const {
    ptrdiff_t at = 0;
    for (int dim = 0; dim < ndim; ++dim) at = at * shape_[dim] + index[dim];
    return at;
  }
};

// The loop's position over the (flattened) elementwise arrays: _ind.size(), _ind.get() after _ind.set(i).
class CIndexer {
  ptrdiff_t size_;
  ptrdiff_t index_[1];

 public:
  __host__ __device__ explicit CIndexer(ptrdiff_t size) : size_(size), index_{0} {}
  __device__ ptrdiff_t size() const { return size_; }
  __device__ void set(ptrdiff_t i) { index_[0] = i; }
  __device__ const ptrdiff_t (&get() const)[1] { return index_; }
};

#ifdef MINIDL_HALF
// CuPy's float16: half storage, arithmetic in float (through the implicit conversion), rounded on assignment.
class float16 {
  MINIDL_HALF data_;

 public:
  __device__ float16() {}
  __device__ float16(float v) : data_(v) {}
  explicit __device__ float16(bool v) : data_(float(v)) {}
  explicit __device__ float16(double v) : data_(v) {}
  explicit __device__ float16(int v) : data_(v) {}
  explicit __device__ float16(unsigned int v) : data_(v) {}
  explicit __device__ float16(long long v) : data_(v) {}
  explicit __device__ float16(unsigned long long v) : data_(v) {}
  __device__ operator float() const { return float(data_); }

  float16& operator=(const float16&) = default;
  template <typename T> __device__ float16& operator=(const T& rhs) { return *this = static_cast<float16>(rhs); }
  template <typename T> __device__ float16& operator+=(const T& rhs) { return *this = *this + rhs; }
  template <typename T> __device__ float16& operator-=(const T& rhs) { return *this = *this - rhs; }
  template <typename T> __device__ float16& operator*=(const T& rhs) { return *this = *this * rhs; }
  template <typename T> __device__ float16& operator/=(const T& rhs) { return *this = *this / rhs; }
};

__device__ inline float16 min(float16 x, float16 y) { return float16(fminf(float(x), float(y))); }
__device__ inline float16 max(float16 x, float16 y) { return float16(fmaxf(float(x), float(y))); }
__device__ inline float16 fmin(float16 x, float16 y) { return float16(fminf(float(x), float(y))); }
__device__ inline float16 fmax(float16 x, float16 y) { return float16(fmaxf(float(x), float(y))); }
#ifndef __CUDACC__
inline bool isfinite(float16 x) { return isfinite(float(x)); }  // CuPy's float16.cuh has it
#endif
#ifndef __CUDACC__
// simd reductions of float16 (OpenMP knows + and max for arithmetic types only): simdSum's sums, each step rounded
// as above, and maxima (started from the variable's value before the loop, as a maximum's identity would be -inf).
#pragma omp declare reduction(+ : float16 : omp_out += omp_in) initializer(omp_priv = float16(0.0f))
#pragma omp declare reduction(max : float16 : omp_out = omp_in > omp_out ? omp_in : omp_out) \
    initializer(omp_priv = omp_orig)
#endif
#endif
