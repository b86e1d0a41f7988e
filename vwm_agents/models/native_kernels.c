/*
 * Fused elementwise kernels of the DaleRNN's Euler loop: float32, contiguous arrays, one pass.
 *
 * Eager PyTorch runs a gamma noise draw as ~25 separate ops, each a pass over the (B, N) rates
 * with its own allocation and dispatch; here the same maths is one loop that the compiler
 * vectorises. Built at first use by vwm_agents/models/native.py (plain C99, no PyTorch headers) and
 * called through ctypes. The random numbers come from the counter-based Philox fill in this file
 * (vwm_philox_normal / vwm_philox_uniform, the streams of vwm_agents/models/philox.py, keyed by
 * the run's torch generator), drawn for the whole tensor before the arithmetic loops.
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
 * Random numbers: Philox-4x32-10 (Salmon et al. 2011), a counter-based generator: block j of a
 * draw is philox(counter = (j, 0, 0, 0), key), four 32-bit words. vwm_agents/models/philox.py holds the
 * same generator in PyTorch integer ops (bit-identical) and the layout of a draw:
 *   uniforms: element j + m q (m = 0..3, q = ceil(n / 4)) is (word_m >> 8) 2^-24, in [0, 1);
 *   normals (Box-Muller): words (0, 1) give elements j and j + q, words (2, 3) give j + 2q and
 *   j + 3q: u1 = ((word_a >> 8) + 1) 2^-24 in (0, 1], u2 = (word_b >> 8) 2^-24,
 *   z = sqrt(-2 log u1) (cos 2 pi u2, sin 2 pi u2).
 */
static inline void philox_block(uint64_t block, uint32_t key0, uint32_t key1, uint32_t word[4]) {
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = key0, k1 = key1;
    for (int round = 0; round < 10; ++round) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t next0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t next2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = next0;
        c2 = next2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    word[0] = c0;
    word[1] = c1;
    word[2] = c2;
    word[3] = c3;
}

static inline float unit_interval(uint32_t word) { return (float)(int32_t)(word >> 8) * 0x1p-24f; }

/* (cos 2 pi u, sin 2 pi u) for u = k 2^-24: the quarter turn from the top two bits, exactly;
 * the rest as a +- pi/4 angle around the quarter's middle (Cephes polynomials). */
static inline void unit_circle(uint32_t word, float *cosine, float *sine) {
    uint32_t k = word >> 8;
    int32_t quarter = (int32_t)(k >> 22);
    float angle = ((float)(int32_t)(k & 0x3fffff) * 0x1p-22f - 0.5f) * 1.57079632679489662f;
    float z = angle * angle;
    float s = angle + angle * z * (-1.6666654611e-1f + z * (8.3321608736e-3f
                                                            + z * -1.9515295891e-4f));
    float c = 1.0f - 0.5f * z + z * z * (4.166664568298827e-2f + z * (-1.388731625493765e-3f
                                                                     + z * 2.443315711809948e-5f));
    /* rotate by pi/4: (cos, sin) of the angle from the start of the quarter */
    float ca = (c - s) * 0.70710678118654752f, sa = (c + s) * 0.70710678118654752f;
    float x = quarter == 0 ? ca : quarter == 1 ? -sa : quarter == 2 ? -ca : sa;
    float y = quarter == 0 ? sa : quarter == 1 ? ca : quarter == 2 ? -sa : -ca;
    *cosine = x;
    *sine = y;
}

static inline void normal_pair(uint32_t word_a, uint32_t word_b, float *first, float *second) {
    float u1 = ((float)(int32_t)(word_a >> 8) + 1.0f) * 0x1p-24f;
    float radius = __builtin_sqrtf(-2.0f * log_f32(u1));
    float cosine, sine;
    unit_circle(word_b, &cosine, &sine);
    *first = radius * cosine;
    *second = radius * sine;
}

static inline void normal_block(index_t j, uint32_t key0, uint32_t key1, float value[4]) {
    uint32_t w[4];
    philox_block((uint64_t)j, key0, key1, w);
    normal_pair(w[0], w[1], &value[0], &value[1]);
    normal_pair(w[2], w[3], &value[2], &value[3]);
}

static inline void uniform_block(index_t j, uint32_t key0, uint32_t key1, float value[4]) {
    uint32_t w[4];
    philox_block((uint64_t)j, key0, key1, w);
    for (int m = 0; m < 4; ++m) value[m] = unit_interval(w[m]);
}

/* Element j + m q of the draw is value m of block j; blocks below n - 3q have all four. */
#define PHILOX_FILL(name, block)                                                        \
    void name(index_t n, uint32_t key0, uint32_t key1, float *restrict out) {           \
        index_t q = (n + 3) / 4;                                                        \
        index_t full = n - 3 * q > 0 ? n - 3 * q : 0;                                   \
        for (index_t j = 0; j < full; ++j) {                                            \
            float value[4];                                                             \
            block(j, key0, key1, value);                                                \
            out[j] = value[0];                                                          \
            out[j + q] = value[1];                                                      \
            out[j + 2 * q] = value[2];                                                  \
            out[j + 3 * q] = value[3];                                                  \
        }                                                                               \
        for (index_t j = full; j < q; ++j) {                                            \
            float value[4];                                                             \
            block(j, key0, key1, value);                                                \
            for (int m = 0; m < 4; ++m) {                                               \
                if (j + m * q < n) out[j + m * q] = value[m];                           \
            }                                                                           \
        }                                                                               \
    }

/* n standard normals / n uniforms in [0, 1) of the draw with key (key0, key1). */
PHILOX_FILL(vwm_philox_normal, normal_block)
PHILOX_FILL(vwm_philox_uniform, uniform_block)

/*
 * Gamma spiking noise X of rates r and its pathwise slope dX/dr (see vwm_agents/models/noise.py,
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
