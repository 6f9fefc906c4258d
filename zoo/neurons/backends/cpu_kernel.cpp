// CPU kernels of the ``fused`` neuron backend; built and called by cpu_kernel.py.
//
// They compute the recurrence of zoo/neurons/dynamics.py for every neuron family. Per level k:
//
//     h_k[t] = decay * v_k[t-1] + x[t]          (v_k[0] = v_init)
//     o_k[t] = fire_k(h_k[t]),  v_k[t] = reset(h_k[t], o_k[t]),  out[t] = sum_k o_k[t]
//
// forward, optionally saving the pre-spike membrane h [T, K, N] (float32), and backward the linear
// recurrence (Dynamics.partials gives do/dh and dv/dh, recomputed here from h)
//
//     dL/dh_k[t] = dL/dout[t] * do/dh + decay * dv/dh * dL/dh_k[t+1],   dL/dx[t] = sum_k dL/dh_k[t]
//
// Layout: x, out, grad and grad_x are [T, N] arrays (time outermost, neurons in storage order, any
// of float32 / float64 / float16 / bfloat16); the membrane is float32. Neurons are processed in
// blocks of kBlock: a block runs its whole time loop with its state (v, or dL/dh, of every level)
// in cache, so every element of every array is read or written exactly once, directly in its own
// dtype; the blocks are shared among OpenMP threads.
//
// Forward spikes are bit-identical to the reference (backend="torch"): every operation is the
// reference's, in the same order and float32 rounding (h = v * decay + x as two rounded
// operations, where decay = 1 multiplies exactly; strict comparisons with float32 thresholds; IEEE
// division in the multi-bit quantiser). This requires building with -ffp-contract=off, so that the
// compiler contracts no multiply-add into a fused multiply-add. (-fno-trapping-math, which lets it
// vectorise the selects, changes no value.)

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

extern "C" {

// The dynamics, as cpu_kernel.py's _Params (a ctypes.Structure with the same fields) fills them in.
struct ZooNeuronParams {
  std::int32_t fire;          // 0 step, 1 mpr (InfLoR), 2 multibit
  std::int32_t surrogate;     // fire = step: 0 rectangle, 1 triangle, 2 sigmoid, 3 atan, 4 ste
  std::int32_t levels;        // K
  std::int32_t hard_reset;    // fire = step: hard (v = 0) or soft (v = h - V_k) reset
  std::int32_t detach_reset;  // fire = step: no gradient through the reset
  std::int32_t mpr;           // fire = mpr: straight-through through phi'(h), else on [0, 1]
  float decay, v_th, amplitude, v_init;
  float s_a, s_b;             // surrogate constants, see surrogate()
  float q_scale, q_top;       // multibit: 2^n and 2^m - 2^-n
  float ste_top;              // multibit: straight-through window [0, 2^m v_th)
  float mpr_low, mpr_high;    // mpr: straight-through window (mpr_low, mpr_high], dynamics.MPR_STE_*
  float mpr_scale;            // mpr: 1.5 / tanh(1.5)
  const float* thresholds;    // V_k for k < levels
};

}  // extern "C"

namespace {

using Params = ZooNeuronParams;

constexpr std::int64_t kBlock = 4096;            // neurons per block
constexpr std::int64_t kParallelMin = 1 << 15;   // fewer elements (T x K x N) run on one thread

enum Fire { kStep = 0, kMpr = 1, kMultibit = 2 };
enum Surrogate { kRectangle = 0, kTriangle = 1, kSigmoid = 2, kAtan = 3, kSte = 4 };
enum DType { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

// ---- the neuron, one element at a time -----------------------------------------------------------

// o = fire(h) against threshold vth; v = reset(h, o) (Dynamics.fire_all and Dynamics.reset_step).
template <int FIRE, bool HARD>
inline float fire(float h, float vth, const Params& p, float& v) {
  if constexpr (FIRE == kStep) {
    const bool fired = h > vth;
    v = fired ? (HARD ? 0.0f : h - vth) : h;
    return fired ? p.amplitude : 0.0f;
  } else if constexpr (FIRE == kMpr) {  // phi(h) > 1/2 exactly when h > 1/2; soft reset by 1
    const bool fired = h > 0.5f;
    v = fired ? h - 1.0f : h;
    return fired ? 1.0f : 0.0f;
  } else {  // v_th * clip(floor(h / v_th * 2^n) / 2^n, 0, 2^m - 2^-n); soft reset by the output
    float q = std::floor(h / p.v_th * p.q_scale) / p.q_scale;
    q = std::min(std::max(q, 0.0f), p.q_top);
    const float o = q * p.v_th;
    v = h - o;
    return o;
  }
}

// The surrogate g(z) of dH/dz (surrogate.py), with s_a, s_b set by cpu_kernel.py.
template <int SURR>
inline float surrogate(float z, const Params& p) {
  if constexpr (SURR == kRectangle) {  // s_a = width / 2, s_b = 1 / width
    return std::fabs(z) < p.s_a ? p.s_b : 0.0f;
  } else if constexpr (SURR == kTriangle) {  // s_a = 2 / width
    return std::max(1.0f - std::fabs(z) * p.s_a, 0.0f) * p.s_a;
  } else if constexpr (SURR == kSigmoid) {  // s_a = alpha
    const float s = 1.0f / (1.0f + std::exp(-p.s_a * z));
    return p.s_a * s * (1.0f - s);
  } else if constexpr (SURR == kAtan) {  // s_a = pi / 2 * alpha, s_b = alpha / 2
    const float y = p.s_a * z;
    return p.s_b / (1.0f + y * y);
  } else {  // ste: s_a = width / 2 (bounds included), s_b = 1 / width
    return std::fabs(z) <= p.s_a ? p.s_b : 0.0f;
  }
}

// e^x for |x| <= 3 (Cephes' expf: x = n ln2 + r with ln2 in two parts, e^r by its degree-6
// polynomial, 2^n through the exponent bits), within 2 ulp of std::exp, in inline arithmetic.
inline float exp_small(float x) {
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 2^23)
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  const float q = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                    + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
  const float er = q * (r * r) + r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return er * scale;
}

// InfLoR's d o / d h = 1[0 <= phi(h) <= 1] * phi'(h) on the float32 membrane (dynamics.mpr_ste_grad),
// without library calls or branches, so that the backward loop vectorises (with glibc's tanhf and
// powf it was scalar, about 28 ns an element on one thread here; now about 3, the LIF 0.4):
// - on (0, 1), phi'(h) = mpr_scale (1 - tanh(z)^2) with z = 3 (h - 1/2), computed as
//   mpr_scale 4 e / (e + 1)^2 with e = e^(2z) (z clamped to [-1.5, 1.5], where it lies on (0, 1)):
//   within 5e-7 relative of phi' in float64, as torch's tanh is;
// - 1 at exactly 0 and 1, where phi is the identity;
// - just beyond them, inside the window dynamics.MPR_STE_* admit (-1.5 2^-23 < h <= 1 + 2^-23),
//   phi'(h) = w^(-2/3) / 3 with w = h or 1 - h = 1 + d, d <= 2^-22: (1 - 2d/3) / 3 to float rounding.
inline float mpr_ste_grad(float h, const Params& p) {
  const float z = std::min(std::max(3.0f * (h - 0.5f), -1.5f), 1.5f);
  const float e = exp_small(2.0f * z);
  const float inner = p.mpr_scale * (4.0f * e / ((e + 1.0f) * (e + 1.0f)));
  const float d = (h > 1.0f ? h : 1.0f - h) - 1.0f;
  const float outer = (1.0f - 2.0f / 3.0f * d) / 3.0f;
  const float edge = (h == 0.0f) | (h == 1.0f) ? 1.0f : outer;
  const float g = (h > 0.0f) & (h < 1.0f) ? inner : edge;
  return (h > p.mpr_low) & (h <= p.mpr_high) ? g : 0.0f;
}

// (do/dh, dv/dh) at h, dv/dh including the path through o (Dynamics.partials).
template <int FIRE, int SURR, bool HARD>
inline void partials(float h, float vth, const Params& p, float& do_dh, float& dv_dh) {
  if constexpr (FIRE == kStep) {
    const float g = surrogate<SURR>(h - vth, p);
    do_dh = g * p.amplitude;
    if constexpr (HARD) {
      const float keep = h <= vth ? 1.0f : 0.0f;
      dv_dh = p.detach_reset ? keep : keep - h * g;
    } else {
      dv_dh = p.detach_reset ? 1.0f : 1.0f - g * vth;
    }
  } else {
    float g;
    if constexpr (FIRE == kMpr) {
      // (for kMpr the SURR slot says whether the rectifier is on: no branch on p.mpr in the loop)
      g = SURR ? mpr_ste_grad(h, p) : ((h >= 0.0f) & (h <= 1.0f) ? 1.0f : 0.0f);
    } else {  // multibit: straight-through on [0, 2^m v_th)
      g = (h >= 0.0f) & (h < p.ste_top) ? 1.0f : 0.0f;
    }
    do_dh = g;
    dv_dh = 1.0f - g;
  }
}

// ---- random numbers for the noisy IF neuron ---------------------------------------------------------

// Chris Wellons' "lowbias32" integer hash (bias 0.17 on his avalanche measure).
inline std::uint32_t mix32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// The standard normal quantile function at the centres of 2^16 equiprobable bins,
// z_k = sqrt(2) erfinv((k + 1/2) / 2^15 - 1): M. Giles' single-precision erfinv ("Approximating the
// erfinv function", GPU Computing Gems, 2011) refined by two Newton steps on std::erf in double.
// Built once, on first use (256 KiB, which stays in L2 cache).
constexpr int kNormalBits = 16;

double erfinv(double x) {
  double w = -std::log((1.0 - x) * (1.0 + x)), p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941}) p = c + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682}) p = c + p * w;
  }
  double y = p * x;
  for (int i = 0; i < 2; ++i) y -= (std::erf(y) - x) / (1.1283791670955126 * std::exp(-y * y));
  return y;
}

const float* normal_quantiles() {
  static const std::vector<float> table = [] {
    std::vector<float> z(1 << kNormalBits);
    for (std::size_t k = 0; k < z.size(); ++k) {
      z[k] = static_cast<float>(1.4142135623730951 * erfinv((k + 0.5) / (1 << (kNormalBits - 1)) - 1.0));
    }
    return z;
  }();
  return table.data();
}

// ---- the two loops --------------------------------------------------------------------------------

struct Job {
  const void* in;  // forward: x; backward: dL/dout
  void* out;       // forward: out; backward: dL/dx (may be the same memory as h, see below)
  float* h;        // [T, K, N]; forward: written unless null; backward: read
  std::int64_t steps, neurons;
  const Params* p;
  int threads;
};

// out[t] = sum_k o_k[t] is accumulated in float32: in the output row itself when it is float32,
// else in a row of float32 that is then converted once, as the reference's .to(dtype).
template <typename scalar_t>
constexpr bool kAccumulateInPlace = std::is_same_v<scalar_t, float>;

template <typename scalar_t>
inline float* accumulator(scalar_t* row, std::vector<float>& scratch) {
  if constexpr (kAccumulateInPlace<scalar_t>) {
    return row;
  } else {
    return scratch.data();
  }
}

template <typename scalar_t>
inline void store(const float* acc, scalar_t* row, std::int64_t m) {
  if constexpr (!kAccumulateInPlace<scalar_t>) {
    for (std::int64_t i = 0; i < m; ++i) row[i] = static_cast<scalar_t>(acc[i]);
  }
}

template <typename scalar_t, int FIRE, bool HARD>
void forward_loop(const Job& job) {
  const std::int64_t T = job.steps, N = job.neurons, K = job.p->levels;
  const std::int64_t blocks = (N + kBlock - 1) / kBlock;
#pragma omp parallel num_threads(job.threads) if (job.threads > 1 && T * K * N >= kParallelMin)
  {
    const Params p = *job.p;  // each thread's own copy: no store in the loops can alias it
    std::vector<float> v(K * kBlock);  // membrane of every level
    std::vector<float> unsaved(kBlock);  // h goes here when it is not saved
    std::vector<float> scratch(kAccumulateInPlace<scalar_t> ? 0 : kBlock);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t n0 = b * kBlock, m = std::min(kBlock, N - n0);
      std::fill(v.begin(), v.end(), p.v_init);
      for (std::int64_t t = 0; t < T; ++t) {
        const scalar_t* x = static_cast<const scalar_t*>(job.in) + t * N + n0;
        scalar_t* out = static_cast<scalar_t*>(job.out) + t * N + n0;
        float* acc = accumulator(out, scratch);
        for (std::int64_t k = 0; k < K; ++k) {
          const float vth = p.thresholds[k];
          float* vk = v.data() + k * kBlock;
          float* hk = job.h ? job.h + (t * K + k) * N + n0 : unsaved.data();
          for (std::int64_t i = 0; i < m; ++i) {
            const float h = vk[i] * p.decay + static_cast<float>(x[i]);
            hk[i] = h;
            const float o = fire<FIRE, HARD>(h, vth, p, vk[i]);
            acc[i] = k ? acc[i] + o : o;
          }
        }
        store(acc, out, m);
      }
    }
  }
}

// Every element of dL/dx[t] is written after the elements of h[t] it depends on (same neuron) are
// read, and no other (t, block) touches either: with one level and float32 gradients, dL/dx may
// therefore be written over h.
template <typename scalar_t, int FIRE, int SURR, bool HARD>
void backward_loop(const Job& job) {
  const std::int64_t T = job.steps, N = job.neurons, K = job.p->levels;
  const std::int64_t blocks = (N + kBlock - 1) / kBlock;
#pragma omp parallel num_threads(job.threads) if (job.threads > 1 && T * K * N >= kParallelMin)
  {
    const Params p = *job.p;
    std::vector<float> gh(K * kBlock);  // dL/dh[t+1] of every level
    std::vector<float> scratch(kAccumulateInPlace<scalar_t> ? 0 : kBlock);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t n0 = b * kBlock, m = std::min(kBlock, N - n0);
      std::fill(gh.begin(), gh.end(), 0.0f);
      for (std::int64_t t = T - 1; t >= 0; --t) {
        const scalar_t* go = static_cast<const scalar_t*>(job.in) + t * N + n0;
        scalar_t* gx = static_cast<scalar_t*>(job.out) + t * N + n0;
        float* acc = accumulator(gx, scratch);
        for (std::int64_t k = 0; k < K; ++k) {
          const float vth = p.thresholds[k];
          float* ghk = gh.data() + k * kBlock;
          const float* hk = job.h + (t * K + k) * N + n0;
          // omp simd: vectorised even where GCC's cost model declines (InfLoR's rectifier: 5x); the
          // arrays do not overlap, except grad_x written over h at the same index (donated h)
#pragma omp simd
          for (std::int64_t i = 0; i < m; ++i) {
            float do_dh, dv_dh;
            partials<FIRE, SURR, HARD>(hk[i], vth, p, do_dh, dv_dh);
            ghk[i] = do_dh * static_cast<float>(go[i]) + dv_dh * p.decay * ghk[i];
            acc[i] = k ? acc[i] + ghk[i] : ghk[i];
          }
        }
        store(acc, gx, m);
      }
    }
  }
}

using Loop = void (*)(const Job&);

template <typename scalar_t, int FIRE, int SURR>
constexpr Loop kBackward[2] = {backward_loop<scalar_t, FIRE, SURR, false>,
                               backward_loop<scalar_t, FIRE, SURR, true>};

// The loop for the dynamics, on arrays of scalar_t.
template <typename scalar_t>
struct Forward {
  static Loop select(const Params& p) {
    switch (p.fire) {
      case kStep:
        return p.hard_reset ? forward_loop<scalar_t, kStep, true> : forward_loop<scalar_t, kStep, false>;
      case kMpr: return forward_loop<scalar_t, kMpr, false>;
      case kMultibit: return forward_loop<scalar_t, kMultibit, false>;
      default: return nullptr;
    }
  }
};

template <typename scalar_t>
struct Backward {
  static Loop select(const Params& p) {
    const bool hard = p.hard_reset;
    switch (p.fire) {
      case kMpr: return p.mpr ? backward_loop<scalar_t, kMpr, 1, false> : backward_loop<scalar_t, kMpr, 0, false>;
      case kMultibit: return backward_loop<scalar_t, kMultibit, 0, false>;
      case kStep: break;
      default: return nullptr;
    }
    switch (p.surrogate) {
      case kRectangle: return kBackward<scalar_t, kStep, kRectangle>[hard];
      case kTriangle: return kBackward<scalar_t, kStep, kTriangle>[hard];
      case kSigmoid: return kBackward<scalar_t, kStep, kSigmoid>[hard];
      case kAtan: return kBackward<scalar_t, kStep, kAtan>[hard];
      case kSte: return kBackward<scalar_t, kStep, kSte>[hard];
      default: return nullptr;
    }
  }
};

// Direction::select for the element type of x, out, dL/dout and dL/dx.
template <template <typename> class Direction>
Loop select(int dtype, const Params& p) {
  switch (dtype) {
    case kFloat32: return Direction<float>::select(p);
    case kFloat64: return Direction<double>::select(p);
    case kFloat16: return Direction<c10::Half>::select(p);
    case kBFloat16: return Direction<c10::BFloat16>::select(p);
    default: return nullptr;
  }
}

int run(Loop loop, const Job& job) {
  if (loop == nullptr || job.p->levels < 1) return 1;
  loop(job);
  return 0;
}

// See zoo_noisy_input and zoo_noisy_fire: h = x + (mu + sigma z) V_th for n elements in storage
// order, and with FIRE, out = V_th H(h - V_th). Blocks of kBlock elements (kBlock divides 2^32, so
// the high word of the index is the same throughout a block); the inner loop runs on 32-bit lanes.
template <bool UNIFORM, bool FIRE>
void noisy_loop(const float* x, float* h, float* out, std::int64_t n, std::uint64_t seed, float mu, float sigma,
                float v_th, int threads) {
  const std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  const float* table = UNIFORM ? nullptr : normal_quantiles();
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && n >= kParallelMin)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t i0 = b * kBlock;
    const std::int32_t m = static_cast<std::int32_t>(std::min(kBlock, n - i0));
    const std::uint32_t low = static_cast<std::uint32_t>(i0), high = static_cast<std::uint32_t>(i0 >> 32) ^ k1;
    const float* xb = x + i0;
    float* hb = h ? h + i0 : nullptr;
    float* ob = out + i0;  // (FIRE = false: the noisy input itself goes here)
#pragma omp simd
    for (std::int32_t j = 0; j < m; ++j) {
      const std::uint32_t bits = mix32(mix32((low + static_cast<std::uint32_t>(j)) ^ k0) + high);
      float z;
      if constexpr (UNIFORM) {  // (u * 2 - 1) sqrt(3), u = (bits / 2^9 + 1/2) / 2^23 in (0, 1)
        z = ((static_cast<float>(static_cast<std::int32_t>(bits >> 9)) + 0.5f) * 0x1p-23f * 2.0f - 1.0f) * 1.7320508f;
      } else {
        z = table[bits >> (32 - kNormalBits)];
      }
      const float v = (z * sigma + mu) * v_th + xb[j];
      if constexpr (FIRE) {
        if (hb) hb[j] = v;
        ob[j] = v > v_th ? v_th : 0.0f;
      } else {
        ob[j] = v;
      }
    }
  }
}

}  // namespace

extern "C" {

// x [T, N] (dtype) -> out [T, N] (dtype); h [T, K, N] float32 is written unless null.
// Returns 0, or 1 for parameters it does not know.
int zoo_neuron_forward(const void* x, void* out, float* h, int dtype, std::int64_t steps,
                       std::int64_t neurons, const ZooNeuronParams* p, int threads) {
  return run(select<Forward>(dtype, *p), Job{x, out, h, steps, neurons, p, threads});
}

// The training step of the noisy IF neuron (zoo/neurons/noisy_if.py), float32, n elements in
// storage order: h = x + (mu + sigma z) V_th with z drawn by a counter-based generator, element i's
// 32 random bits being a hash of (seed, i), so the noise depends on neither the thread count nor the
// block split. Gaussian z: the standard normal quantile at the centre of one of 2^16 equiprobable
// bins (normal_quantiles, |z| <= 4.33), chosen by the top 16 bits; uniform z: (2u - 1) sqrt(3),
// u in (0, 1) from the top 23 bits. torch.randn runs at about a quarter of this speed here.
// zoo_noisy_input writes h to out; zoo_noisy_fire writes out = V_th H(h - V_th) and, unless h is
// null, h (what the neuron backward needs).
void zoo_noisy_input(const float* x, float* out, std::int64_t n, std::uint64_t seed, float mu, float sigma,
                     float v_th, std::int32_t uniform, int threads) {
  (uniform ? noisy_loop<true, false> : noisy_loop<false, false>)(x, nullptr, out, n, seed, mu, sigma, v_th, threads);
}

void zoo_noisy_fire(const float* x, float* out, float* h, std::int64_t n, std::uint64_t seed, float mu, float sigma,
                    float v_th, std::int32_t uniform, int threads) {
  (uniform ? noisy_loop<true, true> : noisy_loop<false, true>)(x, h, out, n, seed, mu, sigma, v_th, threads);
}

// QCFS (zoo/layers/qcfs.py), float32, n elements in storage order: y = lambda * clamp(floor(x /
// lambda * L + shift) / L, 0, 1) with the reference's operations in its order and rounding, and
// code = 0 below the window (floor < 0), 1 inside (0 <= floor <= L), 2 above.
void zoo_qcfs_forward(const float* x, float* y, std::uint8_t* code, std::int64_t n, float lambda,
                      std::int32_t levels, float shift, int threads) {
  const float L = static_cast<float>(levels);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    const float f = std::floor(x[i] / lambda * L + shift);
    code[i] = (f >= 0.0f) & (f <= L) ? 1 : (f > L ? 2 : 0);
    y[i] = std::min(std::max(f / L, 0.0f), 1.0f) * lambda;
  }
}

// Its backward: dL/dx = dL/dy inside the window, else 0; returns dL/dlambda = sum of dL/dy times
// (y - x) / lambda inside, 1 above, 0 below (y recomputed from x), summed in double.
double zoo_qcfs_backward(const float* grad, const float* x, const std::uint8_t* code, float* grad_x,
                         std::int64_t n, float lambda, std::int32_t levels, float shift, int threads) {
  const float L = static_cast<float>(levels);
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  double total = 0.0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : total) if (threads > 1 && n >= kParallelMin)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t i0 = b * kBlock, i1 = std::min(n, i0 + kBlock);
    double block = 0.0;
#pragma omp simd reduction(+ : block)
    for (std::int64_t i = i0; i < i1; ++i) {
      const float g = grad[i];
      const float inside = code[i] == 1 ? 1.0f : 0.0f, above = code[i] == 2 ? 1.0f : 0.0f;
      const float f = std::floor(x[i] / lambda * L + shift);
      const float y = std::min(std::max(f / L, 0.0f), 1.0f) * lambda;
      if (grad_x) grad_x[i] = g * inside;
      block += static_cast<double>(((y - x[i]) / lambda * inside + above) * g);
    }
    total += block;
  }
  return total;
}

// dL/dout [T, N] (dtype) and h [T, K, N] -> dL/dx [T, N] (dtype), which may be h's memory when
// K = 1 and dtype is float32. Returns 0, or 1 for parameters it does not know.
int zoo_neuron_backward(const void* grad, void* grad_x, const float* h, int dtype,
                        std::int64_t steps, std::int64_t neurons, const ZooNeuronParams* p,
                        int threads) {
  const Job job{grad, grad_x, const_cast<float*>(h), steps, neurons, p, threads};
  return run(select<Backward>(dtype, *p), job);
}

}  // extern "C"
