// What minidl's own vectorized C++ on its threads shares (hostsmallgemm.cpp, nn/directconv.cpp; put before their
// text by hostkernel.loadVectorLibrary): the pool's loop (hostthreads.cpp, loaded first), the vector width, and
// fused multiply-adds, as the BLAS those sources stand in for uses them (the kernel texts do not fuse them).
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
