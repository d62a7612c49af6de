/*
 * tinyjax C runtime, private: fixed-point arithmetic, clamping, unaligned loads and the DSP
 * (SIMD32) operations the optimised loops use.
 *
 * Code path: TJX_DSP is 1 when the DSP extension is there (__ARM_FEATURE_DSP and SIMD32, i.e.
 * Cortex-M4/M7), and the operations below are ACLE intrinsics from <arm_acle.h>. Defining
 * TJX_DSP_EMULATION on any other machine selects the same code path with portable C versions of
 * those operations, so the DSP loops are tested bit for bit on the build host too. Defining
 * TJX_PLAIN_C on a DSP core builds the plain-C loops there (to measure what the SIMD paths gain).
 *
 * No C signed overflow anywhere (the sanitizers check): wrap-around arithmetic is done on
 * uint32_t and converted back (GCC converts modulo 2^32).
 */
#ifndef TJX_NN_SUPPORT_H
#define TJX_NN_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arm_nn_types.h"

#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(TJX_PLAIN_C)
#include <arm_acle.h>
#define TJX_DSP 1
#define TJX_DSP_NATIVE 1
#elif defined(TJX_DSP_EMULATION)
#define TJX_DSP 1
#define TJX_DSP_NATIVE 0
#else
#define TJX_DSP 0
#define TJX_DSP_NATIVE 0
#endif

#if defined(__GNUC__)
#define TJX_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define TJX_ALWAYS_INLINE inline
#endif

#define TJX_MAX(a, b) ((a) > (b) ? (a) : (b))
#define TJX_MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- fixed point (CMSIS-NN default build, tinyjax.codegen.intops) ------------------------- */

/* val / 2^exponent rounded half away from zero; exponent in [0, 31]. */
static inline int32_t tjx_divide_by_power_of_two(int32_t val, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << (uint32_t)exponent) - 1u);
    const int32_t remainder = val & mask;
    int32_t result = val >> exponent; /* arithmetic shift: floor */
    int32_t threshold = mask >> 1;
    if (result < 0)
    {
        threshold++;
    }
    if (remainder > threshold)
    {
        result++;
    }
    return result;
}

/*
 * arm_nn_requantize, default (double rounding) build:
 * divide_by_power_of_two(doubling_high_mult(val << max(shift, 0), multiplier), max(-shift, 0)),
 * the left shift wrapping to 32 bits, the doubling high multiply rounding with 1 << 30.
 */
static inline int32_t tjx_requantize(int32_t val, int32_t multiplier, int32_t shift)
{
    const uint32_t left = (uint32_t)(shift > 0 ? shift : 0);
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)val << left);
    const int64_t product = (int64_t)shifted * multiplier + ((int64_t)1 << 30);
    const int32_t high = (int32_t)(product >> 31);
    return tjx_divide_by_power_of_two(high, right);
}

/* clamp(requantize(acc) + output_offset, act_min, act_max) as int8 */
static inline int8_t tjx_requantize_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                                       int32_t act_min, int32_t act_max)
{
    int32_t out = tjx_requantize(acc, multiplier, shift) + output_offset;
    out = TJX_MAX(out, act_min);
    out = TJX_MIN(out, act_max);
    return (int8_t)out;
}

/*
 * tjx_requantize with the per-channel work done once. With a Q31 multiplier of at least 2^30
 * (every normalised one) and a right shift e in [2, 31] (shift <= -2), the double rounding is one
 * 64-bit multiply-accumulate and a shift:
 *   h = floor((val * mult + 2^30) / 2^31), then h / 2^e rounded half away from zero
 *     = floor((h + k) / 2^e),  k = 2^(e-1) if h >= 0 else 2^(e-1) - 1
 *     = floor((val * mult + 2^30 + k * 2^31) / 2^(31+e))   (floor(floor(a/b) + k)/c = floor((a+kb)/(bc)))
 * and h < 0 exactly when val < 0 (mult >= 2^30). The constant 2^30 + k * 2^31 is
 * 2^(e-2) * 2^32 + 2^30 for val >= 0 and that minus 2^31 for val < 0; the result is the high word
 * of the sum shifted right by e - 1. Other multipliers and shifts take tjx_requantize.
 */
typedef struct
{
    int32_t mult;
    int32_t shift;
    int32_t fast;
    int32_t e1;  /* fast: e - 1 */
    uint32_t hi; /* fast: 2^(e-2) */
} tjx_rq;

static inline tjx_rq tjx_rq_make(int32_t mult, int32_t shift)
{
    tjx_rq q;
    q.mult = mult;
    q.shift = shift;
    q.fast = mult >= (1 << 30) && shift <= -2 && shift >= -31;
    q.e1 = q.fast ? -shift - 1 : 0;
    q.hi = q.fast ? 1u << (uint32_t)(-shift - 2) : 0u;
    return q;
}

static inline int32_t tjx_rq_fast(int32_t val, int32_t mult, uint32_t hi, int32_t e1)
{
    const uint32_t neg = (uint32_t)(val >> 31); /* 0 or all ones */
    const uint64_t c = ((uint64_t)(hi + neg) << 32) | (0x40000000u | (neg & 0x80000000u));
    const int64_t p = (int64_t)val * mult + (int64_t)c;
    return (int32_t)(p >> 32) >> e1;
}

static inline int32_t tjx_rq_apply(const tjx_rq *q, int32_t val)
{
    if (q->fast)
    {
        return tjx_rq_fast(val, q->mult, q->hi, q->e1);
    }
    return tjx_requantize(val, q->mult, q->shift);
}

static inline int8_t tjx_clamp_s8(int32_t v, int32_t act_min, int32_t act_max)
{
    v = TJX_MAX(v, act_min);
    v = TJX_MIN(v, act_max);
    return (int8_t)v;
}

/*
 * Folds output_offset into a fast tjx_rq's rounding constant: hi += output_offset * 2^(e-1), so that
 * tjx_rq_fast returns requantize(val) + output_offset (floor((X + oo * 2^(e-1)) / 2^(e-1)) =
 * floor(X / 2^(e-1)) + oo). Exact while the high word stays inside int32: |val * mult| / 2^32 <
 * 2^30, hi <= 2^29, so |oo| * 2^(e-1) < 2^29 suffices. Returns whether it folded (else q unchanged).
 */
static inline int32_t tjx_rq_fold_offset(tjx_rq *q, int32_t output_offset)
{
    if (!q->fast || q->e1 > 21 || output_offset < -128 || output_offset > 127)
    {
        return 0;
    }
    const int32_t mag = output_offset < 0 ? -output_offset : output_offset;
    if (((int64_t)mag << q->e1) >= ((int64_t)1 << 29))
    {
        return 0;
    }
    q->hi = q->hi + (uint32_t)((int64_t)output_offset * ((int64_t)1 << q->e1));
    return 1;
}

/* v saturated to int8 (SSAT #8) */
static inline int32_t tjx_ssat8(int32_t v)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && !defined(TJX_PLAIN_C)
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
#else
    return tjx_clamp_s8(v, -128, 127);
#endif
}

/* a + b wrapping like the hardware (no C overflow) */
static inline int32_t tjx_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* a * b + acc wrapping like the hardware's multiply-accumulate */
static inline int32_t tjx_mac(int32_t acc, int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)acc + (uint32_t)a * (uint32_t)b);
}

/* ---- memory ------------------------------------------------------------------------------- */

/* 4 bytes from any address (Cortex-M4/M7 load unaligned words; memcpy keeps C's aliasing rules) */
static inline uint32_t tjx_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void tjx_write_u32(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

/* ---- DSP (SIMD32) operations: two int16 lanes in a 32-bit word, lane 0 in the low half ----- */
#if TJX_DSP

/* the two lanes (x, y) as one word */
static inline uint32_t tjx_pack16(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16);
}

static inline int32_t tjx_lane_lo(uint32_t v)
{
    return (int32_t)(int16_t)(uint16_t)(v & 0xFFFFu);
}

static inline int32_t tjx_lane_hi(uint32_t v)
{
    return (int32_t)(int16_t)(uint16_t)(v >> 16);
}

static inline uint32_t tjx_ror8(uint32_t v)
{
    return (v >> 8) | (v << 24);
}

#if TJX_DSP_NATIVE
/* bytes 0 and 2 of v, sign-extended to the two lanes */
static inline uint32_t tjx_sxtb16(uint32_t v)
{
    return (uint32_t)__sxtb16((int32_t)v);
}
/* lanes of a plus bytes 0 and 2 of v, sign-extended (lane-wise, modulo 2^16) */
static inline uint32_t tjx_sxtab16(uint32_t a, uint32_t v)
{
    return (uint32_t)__sxtab16((int32_t)a, (int32_t)v);
}
/* acc + lo(a) * lo(b) + hi(a) * hi(b) */
static inline int32_t tjx_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlad((int32_t)a, (int32_t)b, acc);
}
/* acc + lane(a) * lane(b), b/t: bottom/top lane of the first and second operand */
static inline int32_t tjx_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlabb((int32_t)a, (int32_t)b, acc);
}
static inline int32_t tjx_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlatt((int32_t)a, (int32_t)b, acc);
}
static inline int32_t tjx_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlatb((int32_t)a, (int32_t)b, acc);
}
static inline int32_t tjx_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlabt((int32_t)a, (int32_t)b, acc);
}
#else
static inline uint32_t tjx_sxtb16(uint32_t v)
{
    return tjx_pack16((int8_t)(uint8_t)(v & 0xFFu), (int8_t)(uint8_t)((v >> 16) & 0xFFu));
}
static inline uint32_t tjx_sxtab16(uint32_t a, uint32_t v)
{
    const uint32_t x = tjx_sxtb16(v);
    return ((a + x) & 0xFFFFu) | (((a >> 16) + (x >> 16)) << 16);
}
static inline int32_t tjx_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return tjx_mac(tjx_mac(acc, tjx_lane_lo(a), tjx_lane_lo(b)), tjx_lane_hi(a), tjx_lane_hi(b));
}
static inline int32_t tjx_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return tjx_mac(acc, tjx_lane_lo(a), tjx_lane_lo(b));
}
static inline int32_t tjx_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return tjx_mac(acc, tjx_lane_hi(a), tjx_lane_hi(b));
}
static inline int32_t tjx_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return tjx_mac(acc, tjx_lane_hi(a), tjx_lane_lo(b));
}
static inline int32_t tjx_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return tjx_mac(acc, tjx_lane_lo(a), tjx_lane_hi(b));
}
#endif /* TJX_DSP_NATIVE */

/* bytes 1 and 3 of v, sign-extended to the two lanes (SXTB16 with ROR #8: ACLE has no rotated
   form and GCC does not fold the rotation into the instruction, hence one instruction of asm) */
static inline uint32_t tjx_sxtb16_ror8(uint32_t v)
{
#if TJX_DSP_NATIVE && defined(__GNUC__)
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return tjx_sxtb16(tjx_ror8(v));
#endif
}

/* lanes of a plus bytes 1 and 3 of v, sign-extended (SXTAB16 with ROR #8) */
static inline uint32_t tjx_sxtab16_ror8(uint32_t a, uint32_t v)
{
#if TJX_DSP_NATIVE && defined(__GNUC__)
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
#else
    return tjx_sxtab16(a, tjx_ror8(v));
#endif
}

/* an offset in both lanes, for tjx_sxtab16 */
static inline uint32_t tjx_dup16(int32_t v)
{
    return tjx_pack16(v, v);
}

/*
 * sum over i < n of (a[i] + a_offset) * (b[i] + b_offset) + acc, four entries per step:
 * bytes 0/2 and 1/3 of each word are widened (SXTAB16 adds the offset) and multiplied
 * pairwise (SMLAD). The offsets and int8 values fit int16 lanes.
 */
static inline int32_t tjx_dot_s8_dsp(const int8_t *a, int32_t a_offset, const int8_t *b, int32_t b_offset,
                                     int32_t n, int32_t acc)
{
    const uint32_t a_off = tjx_dup16(a_offset);
    const uint32_t b_off = tjx_dup16(b_offset);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t va = tjx_read_u32(a + i);
        const uint32_t vb = tjx_read_u32(b + i);
        acc = tjx_smlad(tjx_sxtab16(a_off, va), tjx_sxtab16(b_off, vb), acc);
        acc = tjx_smlad(tjx_sxtab16_ror8(a_off, va), tjx_sxtab16_ror8(b_off, vb), acc);
    }
    for (; i < n; i++)
    {
        acc = tjx_mac(acc, a[i] + a_offset, b[i] + b_offset);
    }
    return acc;
}
#endif /* TJX_DSP */

/* sum over i < n of (a[i] + a_offset) * (b[i] + b_offset) + acc, on the build's path */
static inline int32_t tjx_dot_s8(const int8_t *a, int32_t a_offset, const int8_t *b, int32_t b_offset, int32_t n,
                                 int32_t acc)
{
#if TJX_DSP
    return tjx_dot_s8_dsp(a, a_offset, b, b_offset, n, acc);
#else
    for (int32_t i = 0; i < n; i++)
    {
        acc = tjx_mac(acc, a[i] + a_offset, b[i] + b_offset);
    }
    return acc;
#endif
}

/*
 * One depthwise output value before requantisation: acc + sum over the filter taps inside the
 * input of (x + input_offset) * w. x points at the channel's value of pixel (0, 0), consecutive
 * pixels x_step apart; w at the filter's tap (0, 0) for this output channel, taps w_step apart.
 * (y0, x0): input position of tap (0, 0); dilation (dy, dx).
 */
static inline int32_t tjx_depthwise_taps(const int8_t *x, int32_t in_h, int32_t in_w, int32_t x_step,
                                         const int8_t *w, int32_t kh, int32_t kw, int32_t w_step, int32_t y0,
                                         int32_t x0, int32_t dy, int32_t dx, int32_t input_offset, int32_t acc)
{
    for (int32_t ky = 0; ky < kh; ky++)
    {
        const int32_t iy = y0 + ky * dy;
        if (iy < 0 || iy >= in_h)
        {
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++)
        {
            const int32_t ix = x0 + kx * dx;
            if (ix < 0 || ix >= in_w)
            {
                continue;
            }
            acc = tjx_mac(acc, x[(iy * in_w + ix) * x_step] + input_offset, w[(ky * kw + kx) * w_step]);
        }
    }
    return acc;
}

#endif /* TJX_NN_SUPPORT_H */
