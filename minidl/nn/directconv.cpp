// A convolution of stride 1 computed directly on minidl's threads (loaded by minidl.nn.directconv, after
// hostthreads.cpp): no im2col, no matrix product.
//
// minidl_direct_conv(real, numbers, x, w, bias, y) computes, for every image n, output map o and position (oy, ox),
//     y[n, o, oy, ox] = bias[o] + Σ_{c, ky, kx} w'[o, c, ky, kx] x[n, c, oy - ph + ky dy, ox - pw + kx dx]
// (x read as 0 outside its maps), with w' = w (O, C, kh, kw) when `flipped` is 0, and w'[o, c, ky, kx] =
// w[c, o, kh-1-ky, kw-1-kx] for w (C, O, kh, kw) when it is 1: a layer's ∂x as the "full" convolution of its
// gradient. `real`: 4 (float) or 8 (double); `bias` null: none. `numbers`: batch, maps (C), height, width, outMaps
// (O), kh, kw, ph, pw, dy, dx, flipped, outH, outW.
//
// Each image's maps are first copied, padded, into a buffer of the thread's own (Hp = height + 2 ph rows of Wp =
// width + 2 pw). An output position p = oy Wp + ox of that padded width then reads tap (ky, kx) of map c at
// c Hp Wp + ky dy Wp + kx dx + p: for a run of consecutive positions, consecutive values, across rows, so a vector of
// positions is one load. The positions with ox >= outW (the padded width's last dx (kw - 1) columns) are computed too
// and dropped. A block of OUT_BLOCK output maps by two vectors of positions is summed in registers over all taps
// (c, ky, kx in that order: every value's sum in the same order whichever thread makes it), each tap one load per
// vector and OUT_BLOCK multiply-adds; the weights, repacked once per call as (c, ky, kx, o) with o padded to whole
// blocks, are read OUT_BLOCK at a time. The sums are fused multiply-adds, as a BLAS's are. The threads share the
// (image, block of output maps) pairs.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

typedef void (*Chunk)(void*, ptrdiff_t, ptrdiff_t);
extern "C" void minidl_parallel(ptrdiff_t n, ptrdiff_t values, Chunk chunk, void* context);

#pragma GCC optimize("fp-contract=fast")

namespace {

#if defined(__AVX512F__)
constexpr int VECTOR_BYTES = 64;
#else
constexpr int VECTOR_BYTES = 32;
#endif
constexpr int OUT_BLOCK = 8;

struct Geometry {
  int64_t batch, maps, height, width, outMaps, kh, kw, ph, pw, dy, dx, flipped, outH, outW;
};

template <typename Real>
struct Call {
  Geometry g;
  const Real* x;
  const Real* packed;  // (maps kh kw, blocks OUT_BLOCK)
  const Real* bias;
  Real* y;
  int64_t blocks;
};

// The sums of OUT_BLOCK output maps at VECTORS vectors of consecutive positions, their bias added, into the tile
// (rows tileStride apart): `padded` is the image's padded maps from the first position on, `weights` the block's,
// `first` the block's bias (null: none).
template <typename Real, int VECTORS>
inline void sumTaps(const Geometry& g, const Real* padded, const Real* weights, const Real* first, Real* tile,
                    int64_t tileStride) {
  typedef Real Vector __attribute__((vector_size(VECTOR_BYTES)));
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const int64_t wp = g.width + 2 * g.pw, plane = (g.height + 2 * g.ph) * wp;
  Vector sum[VECTORS][OUT_BLOCK] = {};
  for (int64_t c = 0; c < g.maps; ++c) {
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const Real* row = padded + c * plane + ky * g.dy * wp;
      const Real* tap = weights + (c * g.kh + ky) * g.kw * OUT_BLOCK;
      for (int64_t kx = 0; kx < g.kw; ++kx, tap += OUT_BLOCK) {
        Vector x[VECTORS];
        for (int v = 0; v < VECTORS; ++v) std::memcpy(&x[v], row + kx * g.dx + v * LANES, sizeof(Vector));
        for (int o = 0; o < OUT_BLOCK; ++o)
          for (int v = 0; v < VECTORS; ++v) sum[v][o] += tap[o] * x[v];
      }
    }
  }
  for (int o = 0; o < OUT_BLOCK; ++o)
    for (int v = 0; v < VECTORS; ++v) {
      const Vector out = first != nullptr ? sum[v][o] + first[o] : sum[v][o];
      std::memcpy(tile + o * tileStride + v * LANES, &out, sizeof(Vector));
    }
}

template <typename Real>
void convolve(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Call<Real>& call = *static_cast<const Call<Real>*>(context);
  const Geometry& g = call.g;
  const int64_t hp = g.height + 2 * g.ph, wp = g.width + 2 * g.pw, plane = hp * wp;
  const int64_t positions = g.outH * wp, taps = g.kh * g.kw;
  const int64_t slack = 2 * LANES + (g.kw - 1) * g.dx;
  thread_local std::vector<Real> padded, tile;
  padded.assign(static_cast<size_t>(g.maps * plane + slack), Real(0));
  tile.resize(static_cast<size_t>(OUT_BLOCK * (positions + 2 * LANES)));
  const int64_t tileStride = positions + 2 * LANES;
  int64_t image = -1;
  for (ptrdiff_t item = begin; item < end; ++item) {
    const int64_t n = item / call.blocks, block = item % call.blocks;
    if (n != image) {
      image = n;
      const Real* source = call.x + n * g.maps * g.height * g.width;
      for (int64_t c = 0; c < g.maps; ++c)
        for (int64_t row = 0; row < g.height; ++row)
          std::memcpy(&padded[c * plane + (row + g.ph) * wp + g.pw], source + (c * g.height + row) * g.width,
                      sizeof(Real) * g.width);
    }
    const Real* weights = call.packed + block * g.maps * taps * OUT_BLOCK;
    Real bias[OUT_BLOCK];
    for (int o = 0; o < OUT_BLOCK; ++o) {
      const int64_t map = block * OUT_BLOCK + o;
      bias[o] = call.bias != nullptr && map < g.outMaps ? call.bias[map] : Real(0);
    }
    const Real* first = call.bias != nullptr ? bias : nullptr;
    int64_t p = 0;
    for (; p + LANES < positions; p += 2 * LANES)
      sumTaps<Real, 2>(g, padded.data() + p, weights, first, &tile[p], tileStride);
    if (p < positions) sumTaps<Real, 1>(g, padded.data() + p, weights, first, &tile[p], tileStride);
    const int64_t maps = std::min<int64_t>(OUT_BLOCK, g.outMaps - block * OUT_BLOCK);
    for (int64_t o = 0; o < maps; ++o) {
      Real* out = call.y + ((n * g.outMaps + block * OUT_BLOCK + o) * g.outH) * g.outW;
      for (int64_t row = 0; row < g.outH; ++row)
        std::memcpy(out + row * g.outW, &tile[o * tileStride + row * wp], sizeof(Real) * g.outW);
    }
  }
}

template <typename Real>
void run(const int64_t* numbers, const void* x, const void* w, const void* bias, void* y) {
  Geometry g;
  std::memcpy(&g, numbers, sizeof g);
  const int64_t blocks = (g.outMaps + OUT_BLOCK - 1) / OUT_BLOCK, taps = g.kh * g.kw;
  std::vector<Real> packed(static_cast<size_t>(g.maps * taps * blocks * OUT_BLOCK), Real(0));
  const Real* weights = static_cast<const Real*>(w);
  for (int64_t o = 0; o < g.outMaps; ++o)
    for (int64_t c = 0; c < g.maps; ++c)
      for (int64_t t = 0; t < taps; ++t) {
        const Real value = g.flipped ? weights[(c * g.outMaps + o) * taps + taps - 1 - t] : weights[(o * g.maps + c) * taps + t];
        packed[((o / OUT_BLOCK * g.maps + c) * taps + t) * OUT_BLOCK + o % OUT_BLOCK] = value;
      }
  Call<Real> call{g, static_cast<const Real*>(x), packed.data(), static_cast<const Real*>(bias), static_cast<Real*>(y),
                  blocks};
  const ptrdiff_t values = static_cast<ptrdiff_t>(g.batch * g.outMaps * g.outH * g.outW * g.maps * taps);
  minidl_parallel(static_cast<ptrdiff_t>(g.batch * blocks), values, convolve<Real>, &call);
}

}  // namespace

extern "C" void minidl_direct_conv(int real, const int64_t* numbers, const void* x, const void* w, const void* bias,
                                   void* y) {
  if (real == 8)
    run<double>(numbers, x, w, bias, y);
  else
    run<float>(numbers, x, w, bias, y);
}
