// Convolutions of stride 1 computed directly on minidl's threads (loaded by minidl.nn.directconv, hostvectors.h
// before it): no im2col, no matrix product.
//
// minidl_direct_conv(real, numbers, x, w, bias, y) computes, for every image n, output map o and position (oy, ox),
//     y[n, o, oy, ox] = bias[o] + Σ_{c, ky, kx} w'[o, c, ky, kx] x[n, c, oy - ph + ky dy, ox - pw + kx dx]
// (x read as 0 outside its maps), with w' = w (O, C, kh, kw) when `flipped` is 0, and w'[o, c, ky, kx] =
// w[c, o, kh-1-ky, kw-1-kx] for w (C, O, kh, kw) when it is 1: a layer's ∂x as the "full" convolution of its
// gradient. `real`: 4 (float) or 8 (double); `bias` null: none. `numbers`: batch, maps (C), height, width, outMaps
// (O), kh, kw, ph, pw, dy, dx, flipped, outH, outW.
//
// minidl_direct_conv_weights(real, numbers, x, grad, gradW) adds the weights' gradient of that convolution (flipped
// 0) into gradW (O, C, kh, kw):
//     gradW[o, c, ky, kx] += Σ_{n, oy, ox} grad[n, o, oy, ox] x[n, c, oy - ph + ky dy, ox - pw + kx dx]
//
// Both sum vectors of consecutive output positions in registers, each value's sum in the same order whichever
// thread makes it, with fused multiply-adds, as a BLAS's are. Two layouts of the positions:
//
// - In place (a "same-width" geometry, outW = width, with AVX-512; minidl_direct_conv_in_place says which): output
//   position p = oy width + ox reads tap (ky, kx) of map c at c height width + p + (ky dy - ph) width + kx dx - pw,
//   in x itself, and each vector's lanes whose tap falls in the pads, or past the map's last position, are masked
//   off as they load (AVX-512's masked loads read nothing there and give 0; laneMasks works them out once per
//   call). Nothing is copied and no position is computed to be dropped: y is written in place, the gradient read.
// - Padded (any other geometry): each image's maps are first copied, padded, into a buffer of the thread's own (Hp
//   = height + 2 ph rows of Wp = width + 2 pw), where position p = oy Wp + ox reads tap (ky, kx) of map c at
//   c Hp Wp + ky dy Wp + kx dx + p; the positions with ox >= outW (the padded width's last dx (kw - 1) columns) are
//   computed too and dropped. Measured against it (32 images, 3x3, pad 1, 2 cores, forward): 16 maps of 32x32
//   0.70 → 0.61 ms, 32 of 16x16 0.66 → 0.56, 64 of 8x8 0.77 → 0.58 (a quarter of 8x8's padded positions dropped).
//
// The forward pass: a block of OUT_BLOCK output maps by two vectors of positions summed over all taps (c, ky, kx in
// that order), each tap one load per vector and OUT_BLOCK multiply-adds; the weights, repacked once per call as (c,
// ky, kx, o) with o padded to whole blocks, read OUT_BLOCK at a time. The threads share the (image, block of output
// maps) pairs.
//
// ∂W: per (block of OUT_BLOCK output maps, group of input maps), each thread's, OUT_BLOCK x 3 taps of vector sums in
// registers over the positions of a run of images (the run's gradient kept in the core's L1 cache while every tap of
// every input map of the group reads it), kept between runs; at the end each vector's lanes are summed pairwise. In
// the padded layout the gradient is copied at the padded width with zeros past each row's outW values: the dropped
// positions add nothing, but read x there, so a sum that comes out not finite (0 x inf = NaN) is made once more
// over the valid positions alone. In place, a masked lane reads 0 from both. Measured against the padded layout and
// im2col's products per image (as above, ∂W): 16 maps of 32x32 0.92 → 0.82 ms, 32 of 16x16 1.06 → 0.75 (by
// products), 64 of 8x8 1.10 → 0.81 (by products; padded 1.56).
#include <cmath>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int OUT_BLOCK = 8;
constexpr int TILE = 2;         // vectors of positions summed at a time by the forward pass, in place
constexpr int IN_GROUP = 8;     // input maps per (block of output maps, group of input maps) of ∂W, padded
constexpr int IN_PLACE_GROUP = 32;  // the same in place (32 maps of 16x16, 32 images: 0.78 ms, against 0.89 by 8)
constexpr int TAP_BLOCK = 3;    // taps of one input map summed at a time for ∂W
// ∂W sums runs of images at a time, the run's gradient block of at most about this many bytes, kept in the core's L1
// cache while every tap of every input map reads it.
constexpr int64_t RUN_BYTES = 24 << 10;

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
  const int64_t* offsets;
  const uint32_t* masks;
};

// The bias of block `block`'s OUT_BLOCK output maps, into `bias` (0 past outMaps): `bias`, or null for a call without.
template <typename Real>
const Real* blockBias(const Call<Real>& call, int64_t block, Real* bias) {
  if (call.bias == nullptr) return nullptr;
  for (int o = 0; o < OUT_BLOCK; ++o) {
    const int64_t map = block * OUT_BLOCK + o;
    bias[o] = map < call.g.outMaps ? call.bias[map] : Real(0);
  }
  return bias;
}

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
    const Real* first = blockBias(call, block, bias);
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

// Rows of `width` values, `rows` in all, planes of `height` rows one after the other in `source`, to rows `stride`
// apart in `out`, planes `planeStride` apart: planes copied into their padded (or padded-width) places.
template <typename Real>
inline void copyRows(const Real* source, int64_t rows, int64_t height, int64_t width, Real* out, int64_t stride,
                     int64_t planeStride) {
  for (int64_t row = 0; row < rows; ++row) {
    const Real* from = source + row * width;
    Real* to = out + row / height * planeStride + row % height * stride;
    for (int64_t x = 0; x < width; ++x) to[x] = from[x];
  }
}

// The LANES values of a vector of sums (at `vector`) summed pairwise, halves onto halves (lane l += lane l + width,
// width LANES / 2 down to 1): the order every ∂W value's lanes are summed in (laneSums, in place, keeps it).
template <typename Real>
inline Real pairwiseSum(const Real* vector) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Real lanes[LANES];
  std::memcpy(lanes, vector, sizeof lanes);
  for (int width = LANES / 2; width > 0; width /= 2)
    for (int lane = 0; lane < width; ++lane) lanes[lane] += lanes[lane + width];
  return lanes[0];
}

template <typename Real>
struct WeightCall {
  Geometry g;
  const Real* x;
  const Real* grad;
  Real* gradW;
  int64_t blocks, groups;
  int64_t run;  // images per run (padded), (image, vector) pairs per run (in place)
  const int64_t* offsets;  // in place: laneMasks'
  const uint32_t* masks;
};

// acc[o][t] += Σ over `vectors` vectors of positions p of grad[o][p] x[p + offsets[t]], for OUT_BLOCK maps of the
// gradient (planes gradStride apart) and TAPS taps of one input map: each position vector of x loaded once for
// OUT_BLOCK multiply-adds, each of the gradient's once for TAPS.
template <typename Real, int TAPS>
inline void sumPositions(const Real* grad, int64_t gradStride, const Real* x, const int64_t* offsets, int64_t vectors,
                         Real* acc) {
  typedef Real Vector __attribute__((vector_size(VECTOR_BYTES)));
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Vector sum[OUT_BLOCK][TAPS];
  UNROLLED for (int o = 0; o < OUT_BLOCK; ++o)
    UNROLLED for (int t = 0; t < TAPS; ++t) std::memcpy(&sum[o][t], acc + (o * TAPS + t) * LANES, sizeof(Vector));
  for (int64_t p = 0; p < vectors * LANES; p += LANES) {
    Vector xs[TAPS];
    UNROLLED for (int t = 0; t < TAPS; ++t) std::memcpy(&xs[t], x + offsets[t] + p, sizeof(Vector));
    UNROLLED for (int o = 0; o < OUT_BLOCK; ++o) {
      Vector g;
      std::memcpy(&g, grad + o * gradStride + p, sizeof g);
      UNROLLED for (int t = 0; t < TAPS; ++t) sum[o][t] += g * xs[t];
    }
  }
  UNROLLED for (int o = 0; o < OUT_BLOCK; ++o)
    UNROLLED for (int t = 0; t < TAPS; ++t) std::memcpy(acc + (o * TAPS + t) * LANES, &sum[o][t], sizeof(Vector));
}

// Σ_{n, oy, ox} grad[n, o, oy, ox] x[n, c, oy - ph + ky dy, ox - pw + kx dx] (x 0 in the pads) for tap t, value by
// value over the valid positions only: where the vector sums came out not finite, since they also multiplied the
// dropped positions' zero gradients by what those read, 0 x inf = NaN for an infinity no window reads.
template <typename Real>
Real windowSum(const Geometry& g, const Real* x, const Real* grad, int64_t o, int64_t c, int64_t t) {
  const int64_t ky = t / g.kw, kx = t % g.kw;
  Real sum = 0;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oy = 0; oy < g.outH; ++oy)
      for (int64_t ox = 0; ox < g.outW; ++ox) {
        const int64_t row = oy - g.ph + ky * g.dy, column = ox - g.pw + kx * g.dx;
        const bool inside = row >= 0 && row < g.height && column >= 0 && column < g.width;
        const Real value = inside ? x[((n * g.maps + c) * g.height + row) * g.width + column] : Real(0);
        sum += grad[((n * g.outMaps + o) * g.outH + oy) * g.outW + ox] * value;
      }
  return sum;
}

// The ∂W of (block of OUT_BLOCK output maps, group of IN_GROUP input maps) pairs [begin, end), added into gradW,
// padded. Runs of call.run images are copied into the thread's buffers (a map's padded planes of the run one after
// the other, the gradient's at the padded width, zeros past each row's outW and past outH rows) and every position of
// the run summed into vectors of sums for each (input map, 3 taps); at the end each vector's lanes are summed pairwise.
template <typename Real>
void convolveWeights(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const WeightCall<Real>& call = *static_cast<const WeightCall<Real>*>(context);
  const Geometry& g = call.g;
  const int64_t wp = g.width + 2 * g.pw, plane = (g.height + 2 * g.ph) * wp, taps = g.kh * g.kw;
  const int64_t stride = (call.run * plane + LANES - 1) / LANES * LANES;  // a map's planes of a run
  std::vector<int64_t> offsets(static_cast<size_t>(taps) + TAP_BLOCK);
  for (int64_t t = 0; t < taps; ++t) offsets[t] = t / g.kw * g.dy * wp + t % g.kw * g.dx;
  thread_local std::vector<Real> paddedBuffer, gradBuffer, sumBuffer;
  for (ptrdiff_t item = begin; item < end; ++item) {
    const int64_t block = item / call.groups, first = item % call.groups * IN_GROUP;
    const int64_t maps = std::min<int64_t>(IN_GROUP, g.maps - first);
    const int64_t outMaps = std::min<int64_t>(OUT_BLOCK, g.outMaps - block * OUT_BLOCK);
    paddedBuffer.assign(static_cast<size_t>(maps * stride + 2 * LANES + offsets[taps - 1]), Real(0));
    gradBuffer.assign(static_cast<size_t>(OUT_BLOCK * stride + LANES), Real(0));
    sumBuffer.assign(static_cast<size_t>(maps * taps * OUT_BLOCK * LANES), Real(0));
    Real* padded = paddedBuffer.data();
    Real* grads = gradBuffer.data();
    Real* sums = sumBuffer.data();
    for (int64_t n = 0; n < g.batch; n += call.run) {
      const int64_t run = std::min(call.run, g.batch - n);
      for (int64_t i = 0; i < run; ++i) {
        copyRows(call.x + ((n + i) * g.maps + first) * g.height * g.width, maps * g.height, g.height, g.width,
                 padded + i * plane + g.ph * wp + g.pw, wp, stride);
        copyRows(call.grad + ((n + i) * g.outMaps + block * OUT_BLOCK) * g.outH * g.outW, outMaps * g.outH, g.outH,
                 g.outW, grads + i * plane, wp, stride);
      }
      if (run < call.run)  // the last vector's positions past the run: zeros, not an earlier run's gradient
        for (int64_t o = 0; o < OUT_BLOCK; ++o) std::fill_n(grads + o * stride + run * plane, LANES, Real(0));
      const int64_t vectors = ((run - 1) * plane + g.outH * wp + LANES - 1) / LANES;
      for (int64_t c = 0; c < maps; ++c)
        for (int64_t t = 0; t < taps; t += TAP_BLOCK) {
          Real* acc = sums + (c * taps + t) * OUT_BLOCK * LANES;
          const Real* x = padded + c * stride;
          const int64_t* at = &offsets[t];
          if (taps - t >= 3) sumPositions<Real, 3>(grads, stride, x, at, vectors, acc);
          else if (taps - t == 2) sumPositions<Real, 2>(grads, stride, x, at, vectors, acc);
          else sumPositions<Real, 1>(grads, stride, x, at, vectors, acc);
        }
    }
    for (int64_t c = 0; c < maps; ++c)
      for (int64_t t = 0; t < taps; t += TAP_BLOCK) {
        const int count = static_cast<int>(std::min<int64_t>(TAP_BLOCK, taps - t));
        const Real* acc = sums + (c * taps + t) * OUT_BLOCK * LANES;
        for (int64_t o = 0; o < outMaps; ++o)
          for (int k = 0; k < count; ++k) {
            Real sum = pairwiseSum(acc + (o * count + k) * LANES);
            const int64_t map = block * OUT_BLOCK + o, input = first + c;
            if (!std::isfinite(sum))  // a dropped position may have read an infinity: the sum once more, exactly
              sum = windowSum(g, call.x, call.grad, map, input, t + k);
            call.gradW[(map * g.maps + input) * taps + t + k] += sum;
          }
      }
  }
}

#if defined(__AVX512F__)
// The in-place layout (see above). Lanes<Real>: a vector of Real loaded or stored with a mask of lanes (lanes off:
// nothing read, 0; nothing written).
template <typename Real>
struct Lanes;
template <>
struct Lanes<float> {
  typedef __m512 Native;
  typedef __mmask16 Mask;
  static __m512 load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(Mask m, float* p, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }
};
template <>
struct Lanes<double> {
  typedef __m512d Native;
  typedef __mmask8 Mask;
  static __m512d load(Mask m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(Mask m, double* p, __m512d v) { _mm512_mask_storeu_pd(p, m, v); }
};

// masks[v taps + t]: the lanes of vector v (positions v LANES on) whose tap t falls inside the map; masks[vectors
// taps + v]: those inside the output map (the last vector's may be fewer); offsets[t]: tap t's distance from the
// position it is read for. A tap (ky, kx) is inside where its row is and its column is: per vector, the lanes of
// each ky's rows inside and each kx's columns, then their intersections.
template <typename Real>
std::vector<uint32_t> laneMasks(const Geometry& g, int64_t* offsets) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const int64_t positions = g.outH * g.outW, vectors = (positions + LANES - 1) / LANES, taps = g.kh * g.kw;
  std::vector<uint32_t> masks(static_cast<size_t>(vectors * (taps + 1)), 0);
  std::vector<uint32_t> rows(static_cast<size_t>(vectors * g.kh), 0), columns(static_cast<size_t>(vectors * g.kw), 0);
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int64_t kx = 0; kx < g.kw; ++kx) offsets[ky * g.kw + kx] = (ky * g.dy - g.ph) * g.width + kx * g.dx - g.pw;
  for (int64_t oy = 0, p = 0; oy < g.outH; ++oy)
    for (int64_t ox = 0; ox < g.outW; ++ox, ++p) {
      const int64_t v = p / LANES;
      const uint32_t bit = uint32_t(1) << (p % LANES);
      masks[vectors * taps + v] |= bit;
      for (int64_t ky = 0, row = oy - g.ph; ky < g.kh; ++ky, row += g.dy)
        if (row >= 0 && row < g.height) rows[v * g.kh + ky] |= bit;
      for (int64_t kx = 0, column = ox - g.pw; kx < g.kw; ++kx, column += g.dx)
        if (column >= 0 && column < g.width) columns[v * g.kw + kx] |= bit;
    }
  for (int64_t v = 0; v < vectors; ++v)
    for (int64_t ky = 0; ky < g.kh; ++ky)
      for (int64_t kx = 0; kx < g.kw; ++kx)
        masks[v * taps + ky * g.kw + kx] = rows[v * g.kh + ky] & columns[v * g.kw + kx];
  return masks;
}

// The sums of OUT_BLOCK output maps at VECTORS vectors of consecutive positions, their bias added, stored into `out`
// (maps outStride apart) for the lanes `stores` holds: `x` is the image's maps from the first position on, `masks`
// the first vector's, `weights` the block's, `first` the block's bias (null: none).
template <typename Real, int VECTORS>
inline void sumTapsInPlace(const Geometry& g, const Real* x, const int64_t* offsets, const uint32_t* masks,
                           const Real* weights, const Real* first, const uint32_t* stores, Real* out,
                           int64_t outStride) {
  typedef Real Vector __attribute__((vector_size(VECTOR_BYTES)));
  typedef Lanes<Real> L;
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const int64_t taps = g.kh * g.kw, plane = g.height * g.width;
  Vector sum[VECTORS][OUT_BLOCK] = {};
  for (int64_t c = 0; c < g.maps; ++c) {
    const Real* map = x + c * plane;
    const Real* tap = weights + c * taps * OUT_BLOCK;
    for (int64_t t = 0; t < taps; ++t, tap += OUT_BLOCK) {
      Vector xs[VECTORS];
      UNROLLED for (int v = 0; v < VECTORS; ++v)
        xs[v] = (Vector)L::load(typename L::Mask(masks[v * taps + t]), map + offsets[t] + v * LANES);
      UNROLLED for (int o = 0; o < OUT_BLOCK; ++o)
        UNROLLED for (int v = 0; v < VECTORS; ++v) sum[v][o] += tap[o] * xs[v];
    }
  }
  UNROLLED for (int o = 0; o < OUT_BLOCK; ++o)
    UNROLLED for (int v = 0; v < VECTORS; ++v) {
      const Vector result = first != nullptr ? sum[v][o] + first[o] : sum[v][o];
      L::store(typename L::Mask(stores[v]), out + o * outStride + v * LANES, (typename L::Native)result);
    }
}

// The (image, block of output maps) pairs [begin, end), TILE vectors of positions at a time; a last block of fewer
// maps than OUT_BLOCK through a tile of the thread's own.
template <typename Real>
void convolveInPlace(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const Call<Real>& call = *static_cast<const Call<Real>*>(context);
  const Geometry& g = call.g;
  const int64_t positions = g.outH * g.outW, vectors = (positions + LANES - 1) / LANES, taps = g.kh * g.kw;
  const uint32_t* masks = call.masks;
  const uint32_t* valid = masks + vectors * taps;
  for (ptrdiff_t item = begin; item < end; ++item) {
    const int64_t n = item / call.blocks, block = item % call.blocks;
    const Real* x = call.x + n * g.maps * g.height * g.width;
    const Real* weights = call.packed + block * g.maps * taps * OUT_BLOCK;
    Real bias[OUT_BLOCK];
    const Real* first = blockBias(call, block, bias);
    const int64_t maps = std::min<int64_t>(OUT_BLOCK, g.outMaps - block * OUT_BLOCK);
    Real* y = call.y + (n * g.outMaps + block * OUT_BLOCK) * positions;
    for (int64_t v = 0; v < vectors; v += TILE) {
      const int count = static_cast<int>(std::min<int64_t>(TILE, vectors - v));
      uint32_t stores[TILE] = {};
      for (int k = 0; k < count; ++k) stores[k] = valid[v + k];
      Real tile[OUT_BLOCK * TILE * LANES];
      const bool whole = maps == OUT_BLOCK;
      Real* out = whole ? y + v * LANES : tile;
      const int64_t stride = whole ? positions : TILE * LANES;
      const uint32_t* m = masks + v * taps;
      const Real* at = x + v * LANES;
      if (count == TILE) sumTapsInPlace<Real, TILE>(g, at, call.offsets, m, weights, first, stores, out, stride);
      else sumTapsInPlace<Real, 1>(g, at, call.offsets, m, weights, first, stores, out, stride);
      if (!whole) {
        const int64_t span = std::min<int64_t>(count * LANES, positions - v * LANES);
        for (int64_t o = 0; o < maps; ++o)
          std::memcpy(y + o * positions + v * LANES, tile + o * stride, sizeof(Real) * span);
      }
    }
  }
}

// acc[o][t] += Σ over the (image, vector) pairs [start, stop) (`vectors` per image) of grad[n, o][v] x[n][v +
// offsets[t]], for OUT_BLOCK maps of the gradient (packed: pair by pair, the OUT_BLOCK vectors of each together) and
// TAPS taps of one input map (x: image start's, images xImage apart), every load of x masked as laneMasks says.
template <typename Real, int TAPS>
inline void sumPositionsInPlace(const Real* packed, const Real* x, int64_t xImage, const int64_t* offsets,
                                const uint32_t* masks, int64_t taps, int64_t vectors, int64_t start, int64_t stop,
                                Real* acc) {
  typedef Real Vector __attribute__((vector_size(VECTOR_BYTES)));
  typedef Lanes<Real> L;
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  Vector sum[OUT_BLOCK][TAPS];
  UNROLLED for (int o = 0; o < OUT_BLOCK; ++o)
    UNROLLED for (int t = 0; t < TAPS; ++t) std::memcpy(&sum[o][t], acc + (o * TAPS + t) * LANES, sizeof(Vector));
  int64_t v = start % vectors;
  for (int64_t at = start; at < stop; ++at, packed += OUT_BLOCK * LANES) {
    Vector xs[TAPS];
    UNROLLED for (int t = 0; t < TAPS; ++t)
      xs[t] = (Vector)L::load(typename L::Mask(masks[v * taps + t]), x + v * LANES + offsets[t]);
    UNROLLED for (int o = 0; o < OUT_BLOCK; ++o) {
      Vector g;
      std::memcpy(&g, packed + o * LANES, sizeof g);
      UNROLLED for (int t = 0; t < TAPS; ++t) sum[o][t] += g * xs[t];
    }
    if (++v == vectors) {
      v = 0;
      x += xImage;
    }
  }
  UNROLLED for (int o = 0; o < OUT_BLOCK; ++o)
    UNROLLED for (int t = 0; t < TAPS; ++t) std::memcpy(acc + (o * TAPS + t) * LANES, &sum[o][t], sizeof(Vector));
}

// sums[j] = pairwiseSum of vector j (vectors[j LANES ...]) for the LANES vectors there, in its order, each step a
// vector add of two vectors' halves side by side.
inline void laneSums(const float* vectors, float* sums) {
  typedef float V __attribute__((vector_size(64)));
  V a[16], b[8], c[4], d[2];
  std::memcpy(a, vectors, sizeof a);
  for (int i = 0; i < 8; ++i)
    b[i] = __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
           __builtin_shufflevector(a[2 * i], a[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30,
                                   31);
  for (int i = 0; i < 4; ++i)
    c[i] = __builtin_shufflevector(b[2 * i], b[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
           __builtin_shufflevector(b[2 * i], b[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  for (int i = 0; i < 2; ++i)
    d[i] = __builtin_shufflevector(c[2 * i], c[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +
           __builtin_shufflevector(c[2 * i], c[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
  const V e = __builtin_shufflevector(d[0], d[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
              __builtin_shufflevector(d[0], d[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  std::memcpy(sums, &e, sizeof e);
}

inline void laneSums(const double* vectors, double* sums) {
  typedef double V __attribute__((vector_size(64)));
  V a[8], b[4], c[2];
  std::memcpy(a, vectors, sizeof a);
  for (int i = 0; i < 4; ++i)
    b[i] = __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(a[2 * i], a[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15);
  for (int i = 0; i < 2; ++i)
    c[i] = __builtin_shufflevector(b[2 * i], b[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
           __builtin_shufflevector(b[2 * i], b[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15);
  const V d = __builtin_shufflevector(c[0], c[1], 0, 2, 4, 6, 8, 10, 12, 14) +
              __builtin_shufflevector(c[0], c[1], 1, 3, 5, 7, 9, 11, 13, 15);
  std::memcpy(sums, &d, sizeof d);
}

// The ∂W of (block of OUT_BLOCK output maps, group of IN_PLACE_GROUP input maps) pairs [begin, end), added into
// gradW: runs of call.run (image, vector) pairs, the run's gradient packed first (its lanes past the map and its maps
// past outMaps zeros), then every (input map, block of taps) summed over the run.
template <typename Real>
void convolveWeightsInPlace(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const WeightCall<Real>& call = *static_cast<const WeightCall<Real>*>(context);
  const Geometry& g = call.g;
  const int64_t positions = g.outH * g.outW, vectors = (positions + LANES - 1) / LANES, taps = g.kh * g.kw;
  const int64_t plane = g.height * g.width;
  const uint32_t* masks = call.masks;
  const uint32_t* valid = masks + vectors * taps;
  typedef Lanes<Real> L;
  thread_local std::vector<Real> sumBuffer, packedGrad;
  for (ptrdiff_t item = begin; item < end; ++item) {
    const int64_t block = item / call.groups, firstMap = item % call.groups * IN_PLACE_GROUP;
    const int64_t maps = std::min<int64_t>(IN_PLACE_GROUP, g.maps - firstMap);
    const int64_t outMaps = std::min<int64_t>(OUT_BLOCK, g.outMaps - block * OUT_BLOCK);
    sumBuffer.assign(static_cast<size_t>(maps * taps * OUT_BLOCK * LANES), Real(0));
    Real* sums = sumBuffer.data();
    for (int64_t start = 0; start < g.batch * vectors; start += call.run) {
      const int64_t stop = std::min(g.batch * vectors, start + call.run);
      packedGrad.resize(static_cast<size_t>((stop - start) * OUT_BLOCK * LANES));
      for (int64_t at = start; at < stop; ++at) {
        const int64_t n = at / vectors, v = at % vectors;
        const Real* grad = call.grad + (n * g.outMaps + block * OUT_BLOCK) * positions + v * LANES;
        Real* to = packedGrad.data() + (at - start) * OUT_BLOCK * LANES;
        for (int o = 0; o < OUT_BLOCK; ++o) {
          const typename L::Native values = L::load(typename L::Mask(o < outMaps ? valid[v] : 0), grad + o * positions);
          std::memcpy(to + o * LANES, &values, sizeof values);
        }
      }
      const int64_t n = start / vectors;
      for (int64_t c = 0; c < maps; ++c)
        for (int64_t t = 0; t < taps; t += TAP_BLOCK) {
          Real* acc = sums + (c * taps + t) * OUT_BLOCK * LANES;
          const Real* x = call.x + (n * g.maps + firstMap + c) * plane;
          const int64_t xImage = g.maps * plane;
          const int64_t* offsets = call.offsets + t;
          const uint32_t* m = masks + t;
          const Real* gp = packedGrad.data();
          if (taps - t >= 3)
            sumPositionsInPlace<Real, 3>(gp, x, xImage, offsets, m, taps, vectors, start, stop, acc);
          else if (taps - t == 2)
            sumPositionsInPlace<Real, 2>(gp, x, xImage, offsets, m, taps, vectors, start, stop, acc);
          else
            sumPositionsInPlace<Real, 1>(gp, x, xImage, offsets, m, taps, vectors, start, stop, acc);
        }
    }
    // each vector's lanes summed pairwise, LANES vectors at a time (laneSums), into the buffer's first values
    const int64_t total = maps * taps * OUT_BLOCK;
    for (int64_t i = 0; i < total; i += LANES) {
      Real lanes[LANES];
      if (total - i >= LANES) {
        laneSums(sums + i * LANES, lanes);
      } else {
        for (int64_t j = 0; j < total - i; ++j) lanes[j] = pairwiseSum(sums + (i + j) * LANES);
      }
      std::memcpy(sums + i, lanes, sizeof(Real) * std::min<int64_t>(LANES, total - i));
    }
    const Real* sum = sums;  // per input map c and block of count taps from t: (o count + k) for tap t + k
    for (int64_t c = 0; c < maps; ++c)
      for (int64_t t = 0; t < taps; t += TAP_BLOCK) {
        const int64_t count = std::min<int64_t>(TAP_BLOCK, taps - t);
        for (int64_t o = 0; o < outMaps; ++o)
          for (int64_t k = 0; k < count; ++k)
            call.gradW[((block * OUT_BLOCK + o) * g.maps + firstMap + c) * taps + t + k] += sum[o * count + k];
        sum += OUT_BLOCK * count;
      }
  }
}
#endif

#if defined(__AVX512F__)
bool inPlace(const Geometry& g) { return g.outW == g.width; }
#else
bool inPlace(const Geometry&) { return false; }
#endif

// The vector multiply-adds of a convolution (forward, ∂x or ∂W): what the pool weighs against waking its threads
// (minidl_parallel's `values`; 16 maps of 4x4 from 8, one image: 1,152, one thread's 0.2 µs).
template <typename Real>
ptrdiff_t vectorOps(const Geometry& g) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  return static_cast<ptrdiff_t>(g.batch * g.outMaps * g.outH * g.outW * g.maps * g.kh * g.kw / LANES);
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
        const Real value = g.flipped ? weights[(c * g.outMaps + o) * taps + taps - 1 - t]
                                     : weights[(o * g.maps + c) * taps + t];
        packed[((o / OUT_BLOCK * g.maps + c) * taps + t) * OUT_BLOCK + o % OUT_BLOCK] = value;
      }
  Call<Real> call{g, static_cast<const Real*>(x), packed.data(), static_cast<const Real*>(bias), static_cast<Real*>(y),
                  blocks, nullptr, nullptr};
  const ptrdiff_t values = vectorOps<Real>(g);
#if defined(__AVX512F__)
  if (inPlace(g)) {
    std::vector<int64_t> offsets(static_cast<size_t>(taps));
    const std::vector<uint32_t> masks = laneMasks<Real>(g, offsets.data());
    call.offsets = offsets.data();
    call.masks = masks.data();
    minidl_parallel(static_cast<ptrdiff_t>(g.batch * blocks), values, convolveInPlace<Real>, &call);
    return;
  }
#endif
  minidl_parallel(static_cast<ptrdiff_t>(g.batch * blocks), values, convolve<Real>, &call);
}

template <typename Real>
void runWeights(const int64_t* numbers, const void* x, const void* grad, void* gradW) {
  WeightCall<Real> call;
  std::memcpy(&call.g, numbers, sizeof call.g);
  const Geometry& g = call.g;
  call.x = static_cast<const Real*>(x);
  call.grad = static_cast<const Real*>(grad);
  call.gradW = static_cast<Real*>(gradW);
  call.blocks = (g.outMaps + OUT_BLOCK - 1) / OUT_BLOCK;
  const int64_t plane = (g.height + 2 * g.ph) * (g.width + 2 * g.pw);
  call.run = std::max<int64_t>(1, std::min<int64_t>(g.batch, RUN_BYTES / sizeof(Real) / (OUT_BLOCK * plane)));
  const ptrdiff_t values = vectorOps<Real>(g);
#if defined(__AVX512F__)
  if (inPlace(g)) {
    std::vector<int64_t> offsets(static_cast<size_t>(g.kh * g.kw));
    const std::vector<uint32_t> masks = laneMasks<Real>(g, offsets.data());
    call.offsets = offsets.data();
    call.masks = masks.data();
    call.groups = (g.maps + IN_PLACE_GROUP - 1) / IN_PLACE_GROUP;
    call.run = RUN_BYTES / static_cast<int64_t>(OUT_BLOCK * VECTOR_BYTES);  // a pair's gradient: OUT_BLOCK vectors
    minidl_parallel(static_cast<ptrdiff_t>(call.blocks * call.groups), values, convolveWeightsInPlace<Real>, &call);
    return;
  }
#endif
  call.groups = (g.maps + IN_GROUP - 1) / IN_GROUP;
  minidl_parallel(static_cast<ptrdiff_t>(call.blocks * call.groups), values, convolveWeights<Real>, &call);
}

}  // namespace

extern "C" void minidl_direct_conv_weights(int real, const int64_t* numbers, const void* x, const void* grad,
                                           void* gradW) {
  if (real == 8)
    runWeights<double>(numbers, x, grad, gradW);
  else
    runWeights<float>(numbers, x, grad, gradW);
}

extern "C" void minidl_direct_conv(int real, const int64_t* numbers, const void* x, const void* w, const void* bias,
                                   void* y) {
  if (real == 8)
    run<double>(numbers, x, w, bias, y);
  else
    run<float>(numbers, x, w, bias, y);
}

extern "C" int minidl_direct_conv_in_place(const int64_t* numbers) {
  Geometry g;
  std::memcpy(&g, numbers, sizeof g);
  return inPlace(g) ? 1 : 0;
}
