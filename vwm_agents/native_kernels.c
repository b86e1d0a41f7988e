/*
 * Fused elementwise kernels of the DaleRNN's Euler loop: float32, contiguous arrays, one pass.
 *
 * Eager PyTorch runs a gamma noise draw as ~25 separate ops, each a pass over the (B, N) rates
 * with its own allocation and dispatch; here the same maths is one loop that the compiler
 * vectorises. Built at first use by vwm_agents/native.py (plain C99, no PyTorch headers) and
 * called through ctypes. The random numbers are drawn by PyTorch beforehand (same generator,
 * same order as the eager path), so only the arithmetic moves here.
 *
 * Compiled without -ffast-math: IEEE semantics, no reassociation, NaN propagates (a diverging
 * run must still be seen as diverging). exp and log are polynomial approximations in the style
 * of Cephes (relative error ~1e-7, float32 rounding), written with plain arithmetic and
 * conditional expressions so that the loops vectorise without a vector maths library.
 */
#include <stdint.h>
#include <string.h>

typedef int64_t index_t;

/* x < lo ? lo : x keeps NaN, like torch.clamp_min. */
static inline float floor_at(float x, float lo) { return x < lo ? lo : x; }

static inline float float_from_bits(int32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline int32_t bits_from_float(float value) {
    int32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* exp(x): 2^n exp(r), n = round(x / ln 2), |r| <= ln 2 / 2, degree-6 polynomial for exp(r).
 * The argument is clamped to [-87, 88] (results stay normal floats); NaN gives NaN. */
static inline float exp_f32(float x) {
    float clamped = x < -87.0f ? -87.0f : x;
    clamped = clamped > 88.0f ? 88.0f : clamped;
    /* round to nearest by adding and removing 1.5 * 2^23 (exact for |v| < 2^22) */
    float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = clamped - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    int32_t exponent = (int32_t)n + 127;
    return y * float_from_bits(exponent << 23);
}

/* log(x) for normal x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), degree-9 polynomial. */
static inline float log_f32(float x) {
    int32_t bits = bits_from_float(x);
    int32_t e = ((bits >> 23) & 0xff) - 126;
    float m = float_from_bits((bits & 0x007fffff) | 0x3f000000); /* in [0.5, 1) */
    int32_t below = m < 0.707106781186547524f;
    e -= below;
    m = below ? m + m - 1.0f : m - 1.0f;
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    float fe = (float)e;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return (m + y) + 0.693359375f * fe;
}

/*
 * Gamma spiking noise X of rates r and its pathwise slope dX/dr (see vwm_agents/noise.py,
 * _gamma_sample, for the derivation), from a standard normal z and a uniform u per element;
 * K = k^2 / dt_s. slope may be NULL. (Each kernel has one loop per case, without branches in
 * the loop body, so that it vectorises even at the baseline instruction set.)
 */
static inline float gamma_element(float r, float z, float u, float K, float *slope) {
    float inv_rate = 1.0f / floor_at(r, 1e-10f);
    float total = r + K;
    float inv_shape_next = K / floor_at(total, 1e-10f);
    float noise_term = z * __builtin_sqrtf(inv_shape_next);
    float base = floor_at((1.0f - inv_shape_next * (1.0f / 9.0f)) + noise_term * (1.0f / 3.0f),
                          0.0f);
    float exponent = floor_at(log_f32(floor_at(u, 1e-30f)) * K * inv_rate, -60.0f);
    float boosted_sq = exp_f32(exponent) * (base * base);
    float value = boosted_sq * base * total;
    float d = (base + inv_shape_next * (1.0f / 3.0f)) - noise_term * 0.5f;
    *slope = d * boosted_sq - value * (exponent * inv_rate);
    return value;
}

void vwm_gamma_noise(index_t n, const float *restrict rates, const float *restrict normal,
                     const float *restrict uniform, float variance_per_rate,
                     float *restrict noisy, float *restrict slope) {
    const float K = variance_per_rate;
    float unused;
    if (slope) {
        for (index_t i = 0; i < n; ++i) {
            float d;
            noisy[i] = gamma_element(rates[i], normal[i], uniform[i], K, &d);
            slope[i] = d;
        }
    } else {
        for (index_t i = 0; i < n; ++i) {
            noisy[i] = gamma_element(rates[i], normal[i], uniform[i], K, &unused);
        }
    }
}

/* Gaussian spiking noise: ReLU(r + k z sqrt(r / dt_s + 1e-10)), slope where the ReLU passes. */
static inline float gauss_element(float r, float z, float factor, float inv_dt_s, float *slope) {
    float scale = __builtin_sqrtf(1e-10f + r * inv_dt_s);
    float noise = z * factor;
    float value = r + noise * scale;
    value = value < 0.0f ? 0.0f : value; /* keeps NaN, like torch.relu */
    float d = 1.0f + (noise / scale) * (0.5f * inv_dt_s);
    *slope = value > 0.0f ? d : (value == 0.0f ? 0.0f : value);
    return value;
}

void vwm_gauss_noise(index_t n, const float *restrict rates, const float *restrict normal,
                     float factor, float inv_dt_s, float *restrict noisy, float *restrict slope) {
    float unused;
    if (slope) {
        for (index_t i = 0; i < n; ++i) {
            float d;
            noisy[i] = gauss_element(rates[i], normal[i], factor, inv_dt_s, &d);
            slope[i] = d;
        }
    } else {
        for (index_t i = 0; i < n; ++i) {
            noisy[i] = gauss_element(rates[i], normal[i], factor, inv_dt_s, &unused);
        }
    }
}

/*
 * One Euler update with the saturating rate function:
 *   target = r_sat sigmoid(pre), rates = lerp(previous, target, leak),
 *   phi_slope = leak dtarget/dpre = leak target (1 - target / r_sat)  (phi_slope may be NULL).
 * The lerp is computed as torch.lerp does (from whichever end is nearer the weight).
 */
static inline float sigmoid_element(float pre, float previous, float w, float saturation,
                                    float inv_saturation, float *phi_slope) {
    float target = saturation / (1.0f + exp_f32(-pre));
    float diff = target - previous;
    *phi_slope = (target - target * target * inv_saturation) * w;
    return w < 0.5f ? previous + w * diff : target - diff * (1.0f - w);
}

void vwm_sigmoid_step(index_t n, const float *restrict pre, const float *restrict previous,
                      const float *restrict leak, float saturation, float *restrict rates,
                      float *restrict phi_slope) {
    const float inv_saturation = 1.0f / saturation;
    float unused;
    if (phi_slope) {
        for (index_t i = 0; i < n; ++i) {
            float d;
            rates[i] = sigmoid_element(pre[i], previous[i], leak[i], saturation,
                                       inv_saturation, &d);
            phi_slope[i] = d;
        }
    } else {
        for (index_t i = 0; i < n; ++i) {
            rates[i] = sigmoid_element(pre[i], previous[i], leak[i], saturation,
                                       inv_saturation, &unused);
        }
    }
}
