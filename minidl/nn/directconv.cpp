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
// Each image's maps are first copied, padded, into a buffer of the thread's own (Hp = height + 2 ph rows of Wp =
// width + 2 pw). An output position p = oy Wp + ox of that padded width then reads tap (ky, kx) of map c at
// c Hp Wp + ky dy Wp + kx dx + p: for a run of consecutive positions, consecutive values, across rows, so a vector of
// positions is one load. The positions with ox >= outW (the padded width's last dx (kw - 1) columns) are computed too
// and dropped. A block of OUT_BLOCK output maps by two vectors of positions is summed in registers over all taps
// (c, ky, kx in that order: every value's sum in the same order whichever thread makes it), each tap one load per
// vector and OUT_BLOCK multiply-adds; the weights, repacked once per call as (c, ky, kx, o) with o padded to whole
// blocks, are read OUT_BLOCK at a time. The sums are fused multiply-adds, as a BLAS's are. The threads share the
// (image, block of output maps) pairs.
//
// minidl_direct_conv_weights(real, numbers, x, grad, gradW) adds the weights' gradient of that convolution (flipped
// 0) into gradW (O, C, kh, kw):
//     gradW[o, c, ky, kx] += Σ_{n, oy, ox} grad[n, o, oy, ox] x[n, c, oy - ph + ky dy, ox - pw + kx dx]
// over the same padded positions, the gradient copied at the padded width with zeros past each row's outW values (the
// dropped positions add nothing; a sum that comes out not finite, where 0 x inf may have made it NaN, is made once
// more over the valid positions alone): per (block of OUT_BLOCK output maps,
// group of IN_GROUP input maps), each thread's, OUT_BLOCK x 3 taps of vector sums in registers over the positions of
// a run of images, kept between runs; at the end each vector's lanes are summed pairwise. Every sum runs in the same
// order whichever thread makes it.
#include <cmath>

namespace {

constexpr int OUT_BLOCK = 8;
constexpr int IN_GROUP = 8;   // input maps per (block of output maps, group of input maps) of ∂W
constexpr int TAP_BLOCK = 3;  // taps of one input map summed at a time for ∂W
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
        const Real value = g.flipped ? weights[(c * g.outMaps + o) * taps + taps - 1 - t]
                                     : weights[(o * g.maps + c) * taps + t];
        packed[((o / OUT_BLOCK * g.maps + c) * taps + t) * OUT_BLOCK + o % OUT_BLOCK] = value;
      }
  Call<Real> call{g, static_cast<const Real*>(x), packed.data(), static_cast<const Real*>(bias), static_cast<Real*>(y),
                  blocks};
  const ptrdiff_t values = static_cast<ptrdiff_t>(g.batch * g.outMaps * g.outH * g.outW * g.maps * taps);
  minidl_parallel(static_cast<ptrdiff_t>(g.batch * blocks), values, convolve<Real>, &call);
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

template <typename Real>
struct WeightCall {
  Geometry g;
  const Real* x;
  const Real* grad;
  Real* gradW;
  int64_t blocks, groups, images;
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

// The ∂W of (block of OUT_BLOCK output maps, group of IN_GROUP input maps) pairs [begin, end), added into gradW. Runs of
// `images` images are copied into the thread's buffers (a map's padded planes of the run one after the other, the
// gradient's at the padded width, zeros past each row's outW and past outH rows) and every position of the run summed
// into vectors of sums for each (input map, 3 taps); at the end each vector's lanes are summed pairwise.
template <typename Real>
void convolveWeights(void* context, ptrdiff_t begin, ptrdiff_t end) {
  constexpr int LANES = VECTOR_BYTES / sizeof(Real);
  const WeightCall<Real>& call = *static_cast<const WeightCall<Real>*>(context);
  const Geometry& g = call.g;
  const int64_t wp = g.width + 2 * g.pw, plane = (g.height + 2 * g.ph) * wp, taps = g.kh * g.kw;
  const int64_t stride = (call.images * plane + LANES - 1) / LANES * LANES;  // a map's planes of a run
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
    for (int64_t n = 0; n < g.batch; n += call.images) {
      const int64_t run = std::min(call.images, g.batch - n);
      for (int64_t i = 0; i < run; ++i) {
        copyRows(call.x + ((n + i) * g.maps + first) * g.height * g.width, maps * g.height, g.height, g.width,
                 padded + i * plane + g.ph * wp + g.pw, wp, stride);
        copyRows(call.grad + ((n + i) * g.outMaps + block * OUT_BLOCK) * g.outH * g.outW, outMaps * g.outH, g.outH,
                 g.outW, grads + i * plane, wp, stride);
      }
      if (run < call.images)  // the last vector's positions past the run: zeros, not an earlier run's gradient
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
          for (int k = 0; k < count; ++k) {  // the lanes summed pairwise, halves onto halves
            Real lanes[LANES];
            std::memcpy(lanes, acc + (o * count + k) * LANES, sizeof lanes);
            for (int width = LANES / 2; width > 0; width /= 2)
              for (int lane = 0; lane < width; ++lane) lanes[lane] += lanes[lane + width];
            const int64_t map = block * OUT_BLOCK + o, input = first + c;
            if (!std::isfinite(lanes[0]))  // a dropped position may have read an infinity: the sum once more, exactly
              lanes[0] = windowSum(g, call.x, call.grad, map, input, t + k);
            call.gradW[(map * g.maps + input) * taps + t + k] += lanes[0];
          }
      }
  }
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
  call.groups = (g.maps + IN_GROUP - 1) / IN_GROUP;
  const int64_t plane = (g.height + 2 * g.ph) * (g.width + 2 * g.pw);
  call.images = std::max<int64_t>(1, std::min<int64_t>(g.batch, RUN_BYTES / sizeof(Real) / (OUT_BLOCK * plane)));
  const ptrdiff_t values = static_cast<ptrdiff_t>(g.batch * g.outMaps * g.outH * g.outW * g.maps * g.kh * g.kw);
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
