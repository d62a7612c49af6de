/*
 * tinyjax C runtime: tjx_depthwise_conv_inplace_s8, the depthwise convolution that writes its
 * output over its input (TinyEngine's in-place depthwise), and its temporary's size.
 *
 * Channel by channel: output channel c is computed from input channel c alone and written over
 * slots p * C + c. Every slot written belongs to channel c (its index is c modulo C), whose input
 * is no longer needed once read; the other channels' bytes are untouched. Numerics of
 * arm_depthwise_conv_s8 with ch_mult 1 (tjx_depthwise_taps).
 *
 * Plain path: output channel c goes to the OH * OW byte temporary, then is scattered.
 *
 * DSP path, dilation 1: the temporary holds a rolling band of channel c's input rows, contiguous
 * (row r at (r mod B) * W, B = min(KH, H) rows, when B * W <= OH * OW). Each input row is gathered
 * just before the first output row that needs it, and output rows go straight to their slots;
 * that is safe when every output row written before row r is gathered ends before row r's slots
 * begin (checked for the whole layer first, else the plain scheme). Output pixels whose window is
 * inside the input take the input offset folded into the bias (bias + input_offset * sum of the
 * filter) and read their taps four at a time (a word of the band, SXTB16 and SMLAD with the
 * filter row packed as int16 pairs 0/2, 1/3 per group of four), the rest one tap at a time; the
 * others add the offset tap by tap over the taps inside the input.
 */
#include "tjx_kernels.h"
#include "tjx_nn_support.h"

#include <stdint.h>

int32_t tjx_depthwise_conv_inplace_s8_get_buffer_size(const cmsis_nn_dims *output_dims)
{
    return output_dims->h * output_dims->w;
}

/* output channel c into tmp, then over the slots of channel c */
static void inplace_channel_via_tmp(const cmsis_nn_dw_conv_params *p, const cmsis_nn_dims *input_dims,
                                    const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims,
                                    const int8_t *filter_data, int32_t c, int32_t bias, int32_t mult, int32_t shift,
                                    int8_t *tmp, int8_t *data)
{
    const int32_t c_n = input_dims->c;
    const int32_t pixels = output_dims->h * output_dims->w;
    int8_t *t = tmp;
    for (int32_t oy = 0; oy < output_dims->h; oy++)
    {
        for (int32_t ox = 0; ox < output_dims->w; ox++)
        {
            const int32_t acc = tjx_depthwise_taps(data + c, input_dims->h, input_dims->w, c_n, filter_data + c,
                                                   filter_dims->h, filter_dims->w, c_n,
                                                   oy * p->stride.h - p->padding.h, ox * p->stride.w - p->padding.w,
                                                   p->dilation.h, p->dilation.w, p->input_offset, bias);
            *t++ = tjx_requantize_s8(acc, mult, shift, p->output_offset, p->activation.min, p->activation.max);
        }
    }
    for (int32_t i = 0; i < pixels; i++)
    {
        data[i * c_n + c] = tmp[i];
    }
}

#if TJX_DSP
#define DW_MAX_K 7 /* band path: filters up to 7x7 */

typedef struct
{
    int32_t in_h, in_w, out_h, out_w, kh, kw, sy, sx, py, px, c_n, rows;
    int32_t input_offset, output_offset, act_min, act_max;
    int32_t slack; /* the byte after the band is inside the temporary */
} dw_band;

/* whether the band fits and no output row overwrites an input row before it is gathered */
static int32_t band_is_safe(const dw_band *g, int32_t tmp_size)
{
    if (g->kh > DW_MAX_K || g->kw > DW_MAX_K || g->rows * g->in_w > tmp_size)
    {
        return 0;
    }
    int32_t next = 0; /* first row not gathered */
    for (int32_t oy = 0; oy < g->out_h; oy++)
    {
        const int32_t last = TJX_MIN(oy * g->sy - g->py + g->kh, g->in_h); /* rows needed: < last */
        if (last > next && (int64_t)oy * g->out_w > (int64_t)next * g->in_w)
        {
            return 0;
        }
        next = TJX_MAX(next, last);
    }
    return 1;
}

/* channel c's input row r into the band */
static void gather_row(const dw_band *g, const int8_t *data, int32_t c, int32_t r, int8_t *band)
{
    const int8_t *src = data + (int64_t)r * g->in_w * g->c_n + c;
    int8_t *dst = band + (r % g->rows) * g->in_w;
    const int32_t step = g->c_n;
    int32_t i = 0;
    for (; i + 4 <= g->in_w; i += 4)
    {
        const uint32_t b0 = (uint8_t)src[0];
        const uint32_t b1 = (uint8_t)src[step];
        const uint32_t b2 = (uint8_t)src[2 * step];
        const uint32_t b3 = (uint8_t)src[3 * step];
        tjx_write_u32(dst + i, b0 | (b1 << 8) | (b2 << 16) | (b3 << 24));
        src += 4 * step;
    }
    for (; i < g->in_w; i++)
    {
        dst[i] = *src;
        src += step;
    }
}

/* four taps from the word at r: bytes 0/2 and 1/3 against the int16 weight pairs wp[0], wp[1] */
#define DW_TAPS4(r, wp)                                                                                        \
    do                                                                                                         \
    {                                                                                                          \
        const uint32_t v_ = tjx_read_u32(r);                                                                   \
        acc = tjx_smlad(tjx_sxtb16(v_), (wp)[0], acc);                                                         \
        acc = tjx_smlad(tjx_sxtb16_ror8(v_), (wp)[1], acc);                                                    \
    } while (0)

/*
 * acc + sum of x * w over a window inside the input, taps row ky at rows[ky] + ix. wq: per filter
 * row, int16 pairs (0, 2), (1, 3), (4, 6), (5, 7) of the row zero-padded to a multiple of four; a
 * group whose padding is more than one tap, and with no slack a padded group, go tap by tap
 * (slack: the byte after the band can be read, so a 3- or 7-tap row reads one word past its last
 * tap, times 0).
 */
static TJX_ALWAYS_INLINE int32_t band_interior(const int8_t *const *rows, int32_t ix, int32_t kh, int32_t kw,
                                               const uint32_t *wq, const int32_t *w, int32_t slack, int32_t acc)
{
    const int32_t words = (kw + 3) >> 2; /* pairs per row: 2 * words */
    for (int32_t ky = 0; ky < kh; ky++)
    {
        const int8_t *r = rows[ky] + ix;
        const uint32_t *wp = wq + ky * 2 * words;
        int32_t kx = 0;
        for (; kx + 4 <= kw; kx += 4)
        {
            DW_TAPS4(r + kx, wp + kx / 2);
        }
        if (kw - kx == 3 && slack)
        {
            DW_TAPS4(r + kx, wp + kx / 2);
            kx = kw;
        }
        for (; kx < kw; kx++)
        {
            acc = tjx_mac(acc, r[kx], w[ky * kw + kx]);
        }
    }
    return acc;
}

/* acc + sum of (x + input_offset) * w over the taps inside the input (rows ky0..ky1-1) */
static TJX_ALWAYS_INLINE int32_t band_edge(const dw_band *g, const int8_t *const *rows, int32_t ky0, int32_t ky1,
                                           int32_t ix, int32_t kw, const int32_t *w, int32_t acc)
{
    const int32_t kx0 = TJX_MAX(0, -ix);
    const int32_t kx1 = TJX_MIN(kw, g->in_w - ix);
    const int32_t off = g->input_offset;
    for (int32_t ky = ky0; ky < ky1; ky++)
    {
        const int8_t *r = rows[ky] + ix;
        const int32_t *wr = w + ky * kw;
        for (int32_t kx = kx0; kx < kx1; kx++)
        {
            acc = tjx_mac(acc, r[kx] + off, wr[kx]);
        }
    }
    return acc;
}

/* what an output pixel needs after its accumulator */
typedef struct
{
    const tjx_rq *q;
    int32_t out_offset, act_min, act_max, c_n;
} dw_out;

static TJX_ALWAYS_INLINE int8_t *dw_store(const dw_out *o, int32_t acc, int8_t *out)
{
    *out = tjx_clamp_s8(tjx_rq_apply(o->q, acc) + o->out_offset, o->act_min, o->act_max);
    return out + o->c_n;
}

/* the same with everything in locals of the span (DW_LOCALS) */
#define DW_LOCALS(o)                                                                                           \
    const int32_t fast_ = (o)->q->fast, mult_ = (o)->q->mult, shift_ = (o)->q->shift, e1_ = (o)->q->e1;      \
    const uint32_t hi_ = (o)->q->hi;                                                                           \
    const int32_t oo_ = (o)->out_offset, lo_ = (o)->act_min, hi8_ = (o)->act_max, cn_ = (o)->c_n
#define DW_STORE(acc, out)                                                                                     \
    do                                                                                                         \
    {                                                                                                          \
        const int32_t r_ = fast_ ? tjx_rq_fast(acc, mult_, hi_, e1_) : tjx_requantize(acc, mult_, shift_);     \
        *(out) = tjx_clamp_s8(r_ + oo_, lo_, hi8_);                                                            \
        (out) += cn_;                                                                                          \
    } while (0)

/* n interior pixels of a 3x3 filter (needs slack), windows at rows[0..2] + ix, ix + sx, ... */
static int8_t *span3(const int8_t *const *rows, int32_t ix, int32_t sx, int32_t n, const uint32_t *wq, int32_t folded,
                     const dw_out *o, int8_t *out)
{
    const int8_t *r0 = rows[0] + ix;
    const int8_t *r1 = rows[1] + ix;
    const int8_t *r2 = rows[2] + ix;
    const uint32_t w00 = wq[0], w01 = wq[1], w10 = wq[2], w11 = wq[3], w20 = wq[4], w21 = wq[5];
    DW_LOCALS(o);
    for (int32_t i = 0; i < n; i++)
    {
        int32_t acc = folded;
        const uint32_t v0 = tjx_read_u32(r0);
        const uint32_t v1 = tjx_read_u32(r1);
        const uint32_t v2 = tjx_read_u32(r2);
        acc = tjx_smlad(tjx_sxtb16(v0), w00, acc);
        acc = tjx_smlad(tjx_sxtb16_ror8(v0), w01, acc);
        acc = tjx_smlad(tjx_sxtb16(v1), w10, acc);
        acc = tjx_smlad(tjx_sxtb16_ror8(v1), w11, acc);
        acc = tjx_smlad(tjx_sxtb16(v2), w20, acc);
        acc = tjx_smlad(tjx_sxtb16_ror8(v2), w21, acc);
        DW_STORE(acc, out);
        r0 += sx;
        r1 += sx;
        r2 += sx;
    }
    return out;
}

/* n interior pixels of a 5x5 filter: per row a word of taps 0-3 and tap 4 */
static int8_t *span5(const int8_t *const *rows, int32_t ix, int32_t sx, int32_t n, const uint32_t *wq,
                     const int32_t *w, int32_t folded, const dw_out *o, int8_t *out)
{
    DW_LOCALS(o);
    for (int32_t i = 0; i < n; i++)
    {
        int32_t acc = folded;
        for (int32_t ky = 0; ky < 5; ky++)
        {
            const int8_t *r = rows[ky] + ix;
            const uint32_t v = tjx_read_u32(r);
            acc = tjx_smlad(tjx_sxtb16(v), wq[4 * ky], acc);
            acc = tjx_smlad(tjx_sxtb16_ror8(v), wq[4 * ky + 1], acc);
            acc = tjx_mac(acc, r[4], w[5 * ky + 4]);
        }
        DW_STORE(acc, out);
        ix += sx;
    }
    return out;
}

/* n interior pixels of a 7x7 filter (needs slack): per row words of taps 0-3 and 4-7 (tap 7 times 0) */
static int8_t *span7(const int8_t *const *rows, int32_t ix, int32_t sx, int32_t n, const uint32_t *wq, int32_t folded,
                     const dw_out *o, int8_t *out)
{
    DW_LOCALS(o);
    for (int32_t i = 0; i < n; i++)
    {
        int32_t acc = folded;
        for (int32_t ky = 0; ky < 7; ky++)
        {
            const int8_t *r = rows[ky] + ix;
            const uint32_t v = tjx_read_u32(r);
            const uint32_t u = tjx_read_u32(r + 4);
            acc = tjx_smlad(tjx_sxtb16(v), wq[4 * ky], acc);
            acc = tjx_smlad(tjx_sxtb16_ror8(v), wq[4 * ky + 1], acc);
            acc = tjx_smlad(tjx_sxtb16(u), wq[4 * ky + 2], acc);
            acc = tjx_smlad(tjx_sxtb16_ror8(u), wq[4 * ky + 3], acc);
        }
        DW_STORE(acc, out);
        ix += sx;
    }
    return out;
}

static TJX_ALWAYS_INLINE void band_channel_k(const dw_band *g, const int8_t *filter_data, int32_t c, int32_t bias,
                                             const tjx_rq *q, int8_t *band, int8_t *data, int32_t kh, int32_t kw)
{
    int32_t w[DW_MAX_K * DW_MAX_K];
    uint32_t wq[DW_MAX_K * 4];
    int32_t wsum = 0;
    const int32_t words = (kw + 3) >> 2;
    for (int32_t ky = 0; ky < kh; ky++)
    {
        int32_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int32_t kx = 0; kx < kw; kx++)
        {
            t[kx] = filter_data[(ky * kw + kx) * g->c_n + c];
            w[ky * kw + kx] = t[kx];
            wsum += t[kx];
        }
        for (int32_t gi = 0; gi < words; gi++)
        {
            wq[ky * 2 * words + 2 * gi] = tjx_pack16(t[4 * gi], t[4 * gi + 2]);
            wq[ky * 2 * words + 2 * gi + 1] = tjx_pack16(t[4 * gi + 1], t[4 * gi + 3]);
        }
    }
    const int32_t folded = tjx_mac(bias, g->input_offset, wsum);
    /* interior columns: ox_lo <= ox < ox_hi */
    const int32_t sx = g->sx;
    int32_t ox_hi = g->in_w - kw + g->px >= 0 ? (g->in_w - kw + g->px) / sx + 1 : 0;
    ox_hi = TJX_MIN(ox_hi, g->out_w);
    const int32_t ox_lo = TJX_MIN((g->px + sx - 1) / sx, ox_hi);
    const int32_t c_n = g->c_n;
    const int32_t out_offset = g->output_offset;
    const int32_t act_min = g->act_min;
    const int32_t act_max = g->act_max;
    int32_t next = 0;
    int8_t *out = data + c;
    for (int32_t oy = 0; oy < g->out_h; oy++)
    {
        const int32_t iy = oy * g->sy - g->py;
        const int32_t last = TJX_MIN(iy + kh, g->in_h);
        for (; next < last; next++)
        {
            gather_row(g, data, c, next, band);
        }
        const int8_t *rows[DW_MAX_K];
        const int32_t ky0 = TJX_MAX(0, -iy);
        const int32_t ky1 = TJX_MIN(kh, g->in_h - iy);
        for (int32_t ky = ky0; ky < ky1; ky++)
        {
            rows[ky] = band + ((iy + ky) % g->rows) * g->in_w;
        }
        int32_t ox = 0;
        if (ky0 == 0 && ky1 == kh)
        {
            for (; ox < ox_lo; ox++)
            {
                const int32_t acc = band_edge(g, rows, ky0, ky1, ox * sx - g->px, kw, w, bias);
                *out = tjx_clamp_s8(tjx_rq_apply(q, acc) + out_offset, act_min, act_max);
                out += c_n;
            }
            int32_t ix = ox * sx - g->px;
            const dw_out o = {q, out_offset, act_min, act_max, c_n};
            if (kh == 3 && kw == 3 && g->slack)
            {
                out = span3(rows, ix, sx, ox_hi - ox, wq, folded, &o, out);
                ox = ox_hi;
            }
            else if (kh == 5 && kw == 5)
            {
                out = span5(rows, ix, sx, ox_hi - ox, wq, w, folded, &o, out);
                ox = ox_hi;
            }
            else if (kh == 7 && kw == 7 && g->slack)
            {
                out = span7(rows, ix, sx, ox_hi - ox, wq, folded, &o, out);
                ox = ox_hi;
            }
            for (; ox < ox_hi; ox++)
            {
                const int32_t acc = band_interior(rows, ix, kh, kw, wq, w, g->slack, folded);
                *out = tjx_clamp_s8(tjx_rq_apply(q, acc) + out_offset, act_min, act_max);
                out += c_n;
                ix += sx;
            }
        }
        for (; ox < g->out_w; ox++)
        {
            const int32_t acc = band_edge(g, rows, ky0, ky1, ox * sx - g->px, kw, w, bias);
            *out = tjx_clamp_s8(tjx_rq_apply(q, acc) + out_offset, act_min, act_max);
            out += c_n;
        }
    }
}

static void band_channel(const dw_band *g, const int8_t *filter_data, int32_t c, int32_t bias, const tjx_rq *q,
                         int8_t *band, int8_t *data)
{
    if (g->kh == 3 && g->kw == 3)
    {
        band_channel_k(g, filter_data, c, bias, q, band, data, 3, 3);
    }
    else if (g->kh == 5 && g->kw == 5)
    {
        band_channel_k(g, filter_data, c, bias, q, band, data, 5, 5);
    }
    else if (g->kh == 7 && g->kw == 7)
    {
        band_channel_k(g, filter_data, c, bias, q, band, data, 7, 7);
    }
    else
    {
        band_channel_k(g, filter_data, c, bias, q, band, data, g->kh, g->kw);
    }
}

/*
 * Padded stack band (dilation 1, filters up to 7x7, the padding value -input_offset an int8): the
 * channel's input rows go into a ring of KH rows on the stack, each row with its padding columns
 * holding -input_offset (so that x + input_offset is 0 there); window rows above and below the
 * input point at one more row of it. Every output pixel is then an interior window of the band (the input
 * offset folded into the bias), computed by the unrolled spans with the channel's weights and
 * requantisation in registers. Output rows go straight to their slots when no output row
 * overwrites an input row before it is gathered (checked for the layer), else into the OH*OW
 * temporary, scattered at the end of the channel. When every padded row the windows reach fits (small planes),
 * the band is the whole padded plane instead: the channel's rows are gathered first (so outputs
 * always go straight to their slots) and one span call covers all output rows.
 */
#define DW_PBAND_MAX 1024 /* bytes of stack for the band */

typedef struct
{
    int32_t in_h, in_w, out_h, out_w, kh, kw, sy, sx, py, px, c_n, pw;
    int32_t input_offset, output_offset, act_min, act_max, direct;
    int32_t plane; /* rows: every padded row the windows reach (ph of them), gathered first; else the ring */
    int32_t ph;
} dw_pband;

/* requantisation of one channel: mode 2 fast with ssat (full int8 range), 1 fast with clamp, 0 slow */
typedef struct
{
    int32_t mode, mult, shift, e1;
    uint32_t hi; /* fast: 2^(e-2) + output_offset * 2^(e-1) */
    int32_t oo, lo, hi8;
} dw_rq;

static TJX_ALWAYS_INLINE int32_t dw_rq_out(int32_t acc, const int32_t mode, int32_t mult, int32_t shift, int32_t e1,
                                           uint32_t hi, int32_t oo, int32_t lo, int32_t hi8)
{
    if (mode >= 1)
    {
        int32_t r = tjx_rq_fast(acc, mult, hi, e1);
        if (mode == 2)
        {
#if TJX_DSP_NATIVE && defined(__GNUC__)
            int32_t o; /* SSAT #8 (ACLE's __ssat trips -Wsign-conversion in GCC's header) */
            __asm__("ssat %0, #8, %1" : "=r"(o) : "r"(r));
            return o;
#else
            return tjx_clamp_s8(r, -128, 127);
#endif
        }
        return tjx_clamp_s8(r, lo, hi8);
    }
    return tjx_clamp_s8(tjx_requantize(acc, mult, shift) + oo, lo, hi8);
}

/* n pixels of a KxK filter (K 3, 5 or 7; other sizes through band_interior), windows at
   rows[ky] + i * sx, outputs step apart */
static TJX_ALWAYS_INLINE int8_t *pspan(const int8_t *const *rows, int32_t sx, int32_t n, const uint32_t *wq,
                                       const int32_t *w, int32_t folded, const dw_rq *q, int8_t *out, int32_t step,
                                       const int32_t kh, const int32_t kw, const int32_t mode)
{
    const int32_t mult = q->mult, shift = q->shift, e1 = q->e1, oo = q->oo, lo = q->lo, hi8 = q->hi8;
    const uint32_t hi = q->hi;
    if (kh == 3 && kw == 3)
    {
        const int8_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
        const uint32_t w00 = wq[0], w01 = wq[1], w10 = wq[2], w11 = wq[3], w20 = wq[4], w21 = wq[5];
        int32_t i = 0;
        if (sx == 1)
        {
            /* two pixels per word of each row: bytes 0-3, pixel 0 taps 0-2, pixel 1 taps 1-3. Pixel 0:
               (b0, b2).(w0, w2) + b1 * w1 (bottom lanes of (b1, b3) and (w1, w3 = 0)); pixel 1:
               (b1, b3).(w0, w2) + b2 * w1 (top lane of (b0, b2), bottom lane of (w1, 0)) */
            for (; i + 2 <= n; i += 2)
            {
                const uint32_t v0 = tjx_read_u32(r0);
                const uint32_t v1 = tjx_read_u32(r1);
                const uint32_t v2 = tjx_read_u32(r2);
                const uint32_t e0 = tjx_sxtb16(v0), o0 = tjx_sxtb16_ror8(v0);
                int32_t a = tjx_smlad(e0, w00, folded);
                int32_t b = tjx_smlad(o0, w00, folded);
                a = tjx_smlabb(o0, w01, a);
                b = tjx_smlatb(e0, w01, b);
                const uint32_t e1v = tjx_sxtb16(v1), o1 = tjx_sxtb16_ror8(v1);
                a = tjx_smlad(e1v, w10, a);
                b = tjx_smlad(o1, w10, b);
                a = tjx_smlabb(o1, w11, a);
                b = tjx_smlatb(e1v, w11, b);
                const uint32_t e2 = tjx_sxtb16(v2), o2 = tjx_sxtb16_ror8(v2);
                a = tjx_smlad(e2, w20, a);
                b = tjx_smlad(o2, w20, b);
                a = tjx_smlabb(o2, w21, a);
                b = tjx_smlatb(e2, w21, b);
                out[0] = (int8_t)dw_rq_out(a, mode, mult, shift, e1, hi, oo, lo, hi8);
                out[step] = (int8_t)dw_rq_out(b, mode, mult, shift, e1, hi, oo, lo, hi8);
                out += 2 * step;
                r0 += 2;
                r1 += 2;
                r2 += 2;
            }
        }
        for (; i < n; i++)
        {
            int32_t acc = folded;
            const uint32_t v0 = tjx_read_u32(r0);
            const uint32_t v1 = tjx_read_u32(r1);
            const uint32_t v2 = tjx_read_u32(r2);
            acc = tjx_smlad(tjx_sxtb16(v0), w00, acc);
            acc = tjx_smlad(tjx_sxtb16_ror8(v0), w01, acc);
            acc = tjx_smlad(tjx_sxtb16(v1), w10, acc);
            acc = tjx_smlad(tjx_sxtb16_ror8(v1), w11, acc);
            acc = tjx_smlad(tjx_sxtb16(v2), w20, acc);
            acc = tjx_smlad(tjx_sxtb16_ror8(v2), w21, acc);
            *out = (int8_t)dw_rq_out(acc, mode, mult, shift, e1, hi, oo, lo, hi8);
            out += step;
            r0 += sx;
            r1 += sx;
            r2 += sx;
        }
        return out;
    }
    int32_t ix = 0;
    int32_t i = 0;
    if (kh == 7 && kw == 7 && sx == 1)
    {
        /* two pixels per pair of words of each row (bytes 0-7; pixel 0 taps 0-6, pixel 1 taps 1-7):
           pixel 0 as below; pixel 1: (b1, b3).(w0, w2) + (b5, b7).(w4, w6) + (b4, b6).(w3, w5) + b2 * w1 */
        uint32_t w35[7];
        for (int32_t ky = 0; ky < 7; ky++)
        {
            w35[ky] = (wq[4 * ky + 1] >> 16) | (wq[4 * ky + 3] << 16);
        }
        for (; i + 2 <= n; i += 2)
        {
            int32_t a = folded;
            int32_t b = folded;
#pragma GCC unroll 7
            for (int32_t ky = 0; ky < 7; ky++)
            {
                const int8_t *r = rows[ky] + ix;
                const uint32_t v = tjx_read_u32(r);
                const uint32_t u = tjx_read_u32(r + 4);
                const uint32_t ve = tjx_sxtb16(v), vo = tjx_sxtb16_ror8(v);
                const uint32_t ue = tjx_sxtb16(u), uo = tjx_sxtb16_ror8(u);
                const uint32_t w02 = wq[4 * ky], w13 = wq[4 * ky + 1], w46 = wq[4 * ky + 2];
                a = tjx_smlad(ve, w02, a);
                b = tjx_smlad(vo, w02, b);
                a = tjx_smlad(vo, w13, a);
                b = tjx_smlatb(ve, w13, b);
                a = tjx_smlad(ue, w46, a);
                b = tjx_smlad(uo, w46, b);
                a = tjx_smlad(uo, wq[4 * ky + 3], a);
                b = tjx_smlad(ue, w35[ky], b);
            }
            out[0] = (int8_t)dw_rq_out(a, mode, mult, shift, e1, hi, oo, lo, hi8);
            out[step] = (int8_t)dw_rq_out(b, mode, mult, shift, e1, hi, oo, lo, hi8);
            out += 2 * step;
            ix += 2;
        }
    }
    if (kh == 5 && kw == 5 && sx == 1)
    {
        /* two pixels per pair of words of each row (pixel 0 taps 0-4, pixel 1 taps 1-5): pixel 0:
           (b0, b2).(w0, w2) + (b1, b3).(w1, w3) + b4 * w4; pixel 1: (b1, b3).(w0, w2) + b2 * w1 +
           b4 * w3 + b5 * w4 (lanes of the SXTB16 words times lanes of (w1, w3) and (w4, 0)) */
        for (; i + 2 <= n; i += 2)
        {
            int32_t a = folded;
            int32_t b = folded;
#pragma GCC unroll 5
            for (int32_t ky = 0; ky < 5; ky++)
            {
                const int8_t *r = rows[ky] + ix;
                const uint32_t v = tjx_read_u32(r);
                const uint32_t u = tjx_read_u32(r + 4);
                const uint32_t ve = tjx_sxtb16(v), vo = tjx_sxtb16_ror8(v);
                const uint32_t ue = tjx_sxtb16(u), uo = tjx_sxtb16_ror8(u);
                const uint32_t w02 = wq[4 * ky], w13 = wq[4 * ky + 1], w4 = wq[4 * ky + 2];
                a = tjx_smlad(ve, w02, a);
                b = tjx_smlad(vo, w02, b);
                a = tjx_smlad(vo, w13, a);
                b = tjx_smlatb(ve, w13, b);
                a = tjx_smlabb(ue, w4, a);
                b = tjx_smlabt(ue, w13, b);
                b = tjx_smlabb(uo, w4, b);
            }
            out[0] = (int8_t)dw_rq_out(a, mode, mult, shift, e1, hi, oo, lo, hi8);
            out[step] = (int8_t)dw_rq_out(b, mode, mult, shift, e1, hi, oo, lo, hi8);
            out += 2 * step;
            ix += 2;
        }
    }
    for (; i < n; i++)
    {
        int32_t acc = folded;
        if (kh == 5 && kw == 5)
        {
#pragma GCC unroll 5
            for (int32_t ky = 0; ky < 5; ky++)
            {
                const int8_t *r = rows[ky] + ix;
                const uint32_t v = tjx_read_u32(r);
                acc = tjx_smlad(tjx_sxtb16(v), wq[4 * ky], acc);
                acc = tjx_smlad(tjx_sxtb16_ror8(v), wq[4 * ky + 1], acc);
                acc = tjx_mac(acc, r[4], w[5 * ky + 4]);
            }
        }
        else if (kh == 7 && kw == 7)
        {
#pragma GCC unroll 7
            for (int32_t ky = 0; ky < 7; ky++)
            {
                const int8_t *r = rows[ky] + ix;
                const uint32_t v = tjx_read_u32(r);
                const uint32_t u = tjx_read_u32(r + 4);
                acc = tjx_smlad(tjx_sxtb16(v), wq[4 * ky], acc);
                acc = tjx_smlad(tjx_sxtb16_ror8(v), wq[4 * ky + 1], acc);
                acc = tjx_smlad(tjx_sxtb16(u), wq[4 * ky + 2], acc);
                acc = tjx_smlad(tjx_sxtb16_ror8(u), wq[4 * ky + 3], acc);
            }
        }
        else
        {
            acc = band_interior(rows, ix, kh, kw, wq, w, 1, acc);
        }
        *out = (int8_t)dw_rq_out(acc, mode, mult, shift, e1, hi, oo, lo, hi8);
        out += step;
        ix += sx;
    }
    return out;
}

#if defined(__GNUC__)
#define DW_NOINLINE __attribute__((noinline))
#else
#define DW_NOINLINE
#endif
/* the spans as functions of their own (registers for one loop), one per filter size and mode */
typedef int8_t *(*dw_span_fn)(const int8_t *const *rows, int32_t sx, int32_t n, const uint32_t *wq,
                              const int32_t *w, int32_t folded, const dw_rq *q, int8_t *out, int32_t step,
                              int32_t kh, int32_t kw, int32_t nrows, int32_t row_step);
#define DW_SPAN(name, K, M)                                                                                    \
    static DW_NOINLINE int8_t *name(const int8_t *const *rows, int32_t sx, int32_t n,            \
                                                  const uint32_t *wq, const int32_t *w, int32_t folded,        \
                                                  const dw_rq *q, int8_t *out, int32_t step, int32_t kh,       \
                                                  int32_t kw, int32_t nrows, int32_t row_step)                 \
    {                                                                                                          \
        (void)kh;                                                                                              \
        (void)kw;                                                                                              \
        for (int32_t oy = 0; oy < nrows; oy++)                                                                 \
        {                                                                                                      \
            const int8_t *rr[K];                                                                               \
            for (int32_t ky = 0; ky < K; ky++)                                                                 \
            {                                                                                                  \
                rr[ky] = rows[ky] + oy * row_step;                                                             \
            }                                                                                                  \
            out = pspan(rr, sx, n, wq, w, folded, q, out, step, K, K, M);                                      \
        }                                                                                                      \
        return out;                                                                                            \
    }
DW_SPAN(pspan3_slow, 3, 0)
DW_SPAN(pspan3_fast, 3, 1)
DW_SPAN(pspan3_ssat, 3, 2)
DW_SPAN(pspan5_slow, 5, 0)
DW_SPAN(pspan5_fast, 5, 1)
DW_SPAN(pspan5_ssat, 5, 2)
DW_SPAN(pspan7_slow, 7, 0)
DW_SPAN(pspan7_fast, 7, 1)
DW_SPAN(pspan7_ssat, 7, 2)

static DW_NOINLINE int8_t *pspan_any(const int8_t *const *rows, int32_t sx, int32_t n,
                                                   const uint32_t *wq, const int32_t *w, int32_t folded,
                                                   const dw_rq *q, int8_t *out, int32_t step, int32_t kh, int32_t kw,
                                                   int32_t nrows, int32_t row_step)
{
    for (int32_t oy = 0; oy < nrows; oy++)
    {
        const int8_t *rr[DW_MAX_K];
        for (int32_t ky = 0; ky < kh; ky++)
        {
            rr[ky] = rows[ky] + oy * row_step;
        }
        out = pspan(rr, sx, n, wq, w, folded, q, out, step, kh, kw, 0);
    }
    return out;
}

static const dw_span_fn dw_spans[3][3] = {{pspan3_slow, pspan3_fast, pspan3_ssat},
                                          {pspan5_slow, pspan5_fast, pspan5_ssat},
                                          {pspan7_slow, pspan7_fast, pspan7_ssat}};

/* input row r into the band row at row (between the padding columns) */
static void pband_row(const dw_pband *g, const int8_t *data, int32_t c, int32_t r, int8_t *row)
{
    int8_t *dst = row + g->px;
    const int32_t w = g->in_w;
    const int8_t *src = data + (int64_t)r * w * g->c_n + c;
    const int32_t step = g->c_n;
    const int32_t step2 = 2 * step;
    int32_t i = 0;
    for (; i + 4 <= w; i += 4)
    {
        const uint32_t b0 = (uint8_t)src[0];
        const uint32_t b1 = (uint8_t)src[step];
        src += step2;
        const uint32_t b2 = (uint8_t)src[0];
        const uint32_t b3 = (uint8_t)src[step];
        src += step2;
        tjx_write_u32(dst + i, b0 | (b1 << 8) | (b2 << 16) | (b3 << 24));
    }
    for (; i < w; i++)
    {
        dst[i] = *src;
        src += step;
    }
}

static TJX_ALWAYS_INLINE void pband_channel_k(const dw_pband *g, const int8_t *filter_data, int32_t c, int32_t bias,
                                              const dw_rq *q, int8_t *band, int8_t *tmp, int8_t *data,
                                              const int32_t kh, const int32_t kw)
{
    int32_t w[DW_MAX_K * DW_MAX_K];
    uint32_t wq[DW_MAX_K * 4];
    int32_t wsum = 0;
    const int32_t words = (kw + 3) >> 2;
    const int32_t c_n = g->c_n;
    const int8_t *f = filter_data + c;
    for (int32_t k = 0; k < kh * kw; k++)
    {
        w[k] = *f;
        wsum += *f;
        f += c_n;
    }
    for (int32_t ky = 0; ky < kh; ky++)
    {
        const int32_t *wr = w + ky * kw;
        for (int32_t gi = 0; gi < words; gi++)
        {
            const int32_t k = 4 * gi;
            wq[ky * 2 * words + 2 * gi] = tjx_pack16(wr[k], k + 2 < kw ? wr[k + 2] : 0);
            wq[ky * 2 * words + 2 * gi + 1] = tjx_pack16(k + 1 < kw ? wr[k + 1] : 0, k + 3 < kw ? wr[k + 3] : 0);
        }
    }
    const int32_t folded = tjx_mac(bias, g->input_offset, wsum);
    const int32_t step = g->direct ? c_n : 1;
    int8_t *out = g->direct ? data + c : tmp;
    const dw_span_fn span = (kh == kw && (kh == 3 || kh == 5 || kh == 7)) ? dw_spans[kh / 2 - 1][q->mode] : pspan_any;
    if (g->plane)
    {
        /* every row first (so outputs go straight to their slots), then one span call */
        const int32_t n_in = TJX_MIN(g->in_h, g->ph - g->py);
        for (int32_t r = 0; r < n_in; r++)
        {
            pband_row(g, data, c, r, band + (g->py + r) * g->pw);
        }
        const int8_t *prow[DW_MAX_K];
        for (int32_t ky = 0; ky < kh; ky++)
        {
            prow[ky] = band + ky * g->pw;
        }
        (void)span(prow, g->sx, g->out_w, wq, w, folded, q, data + c, c_n, kh, kw, g->out_h, g->sy * g->pw);
        return;
    }
    int32_t next = 0; /* first input row not gathered */
    const int8_t *pad_row = band + kh * g->pw;
    for (int32_t oy = 0; oy < g->out_h; oy++)
    {
        const int32_t iy = oy * g->sy - g->py;
        const int32_t last = TJX_MIN(iy + kh, g->in_h);
        for (; next < last; next++)
        {
            pband_row(g, data, c, next, band + (next % kh) * g->pw);
        }
        const int8_t *rows[DW_MAX_K];
        for (int32_t ky = 0; ky < kh; ky++)
        {
            const int32_t r = iy + ky;
            rows[ky] = (r >= 0 && r < g->in_h) ? band + (r % kh) * g->pw : pad_row;
        }
        out = span(rows, g->sx, g->out_w, wq, w, folded, q, out, step, kh, kw, 1, 0);
    }
    if (!g->direct)
    {
        const int32_t pixels = g->out_h * g->out_w;
        int8_t *d = data + c;
        for (int32_t i = 0; i < pixels; i++)
        {
            *d = tmp[i];
            d += c_n;
        }
    }
}

static void pband_channel(const dw_pband *g, const int8_t *filter_data, int32_t c, int32_t bias, const dw_rq *q,
                          int8_t *band, int8_t *tmp, int8_t *data)
{
    if (g->kh == 3 && g->kw == 3)
    {
        pband_channel_k(g, filter_data, c, bias, q, band, tmp, data, 3, 3);
    }
    else if (g->kh == 5 && g->kw == 5)
    {
        pband_channel_k(g, filter_data, c, bias, q, band, tmp, data, 5, 5);
    }
    else if (g->kh == 7 && g->kw == 7)
    {
        pband_channel_k(g, filter_data, c, bias, q, band, tmp, data, 7, 7);
    }
    else
    {
        pband_channel_k(g, filter_data, c, bias, q, band, tmp, data, g->kh, g->kw);
    }
}

/* the padded band's geometry, 0 when it does not apply */
static int32_t pband_setup(dw_pband *g)
{
    if (g->kh > DW_MAX_K || g->kw > DW_MAX_K || g->input_offset < -127 || g->input_offset > 128 || g->py < 0 ||
        g->px < 0 || g->py >= g->kh || g->px >= g->kw || g->out_w < 1 || g->out_h < 1)
    {
        return 0;
    }
    /* columns: padding, the row, and every window's words (4 bytes per started group of 4 taps) */
    const int32_t reach = (g->out_w - 1) * g->sx + 4 * ((g->kw + 3) >> 2);
    g->pw = TJX_MAX(g->px + g->in_w, reach);
    g->ph = (g->out_h - 1) * g->sy + g->kh;
    g->plane = (int64_t)g->pw * g->ph <= DW_PBAND_MAX;
    if (g->plane)
    {
        g->direct = 1;
        return 1;
    }
    if ((int64_t)g->pw * (g->kh + 1) > DW_PBAND_MAX) /* KH ring rows and a padding row */
    {
        return 0;
    }
    /* direct: output row oy ends before the first input row not gathered when it is written */
    g->direct = 1;
    for (int32_t oy = 0; oy < g->out_h; oy++)
    {
        const int32_t last = oy * g->sy + g->kh - g->py; /* input rows < last gathered */
        if (last < g->in_h && (int64_t)(oy + 1) * g->out_w > (int64_t)last * g->in_w)
        {
            g->direct = 0;
            break;
        }
    }
    return 1;
}

static dw_rq dw_rq_make(int32_t mult, int32_t shift, int32_t oo, int32_t lo, int32_t hi8)
{
    dw_rq q;
    const tjx_rq r = tjx_rq_make(mult, shift);
    q.mult = mult;
    q.shift = shift;
    q.oo = oo;
    q.lo = lo;
    q.hi8 = hi8;
    q.e1 = r.e1;
    q.hi = r.hi;
    q.mode = 0;
    /* the output offset folds into the rounding constant when |oo| * 2^e1 < 2^29: the high word
       (|val * mult| / 2^32 < 2^30, plus 2^(e-2) <= 2^29) then stays inside int32 */
    if (r.fast && oo > -128 - 1 && oo < 128 && r.e1 <= 21)
    {
        const int64_t fold = (int64_t)(oo < 0 ? -oo : oo) << r.e1;
        if (fold < ((int64_t)1 << 29))
        {
            q.hi = r.hi + (uint32_t)((int64_t)oo * ((int64_t)1 << r.e1));
            q.mode = (lo == -128 && hi8 == 127) ? 2 : 1;
        }
    }
    return q;
}
#endif /* TJX_DSP */

arm_cmsis_nn_status tjx_depthwise_conv_inplace_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params *quant_params,
                                                  const cmsis_nn_dims *input_dims,
                                                  const cmsis_nn_dims *filter_dims,
                                                  const int8_t *filter_data,
                                                  const cmsis_nn_dims *bias_dims,
                                                  const int32_t *bias_data,
                                                  const cmsis_nn_dims *output_dims,
                                                  int8_t *data)
{
    (void)bias_dims;
    const int32_t c_n = input_dims->c;
    const int32_t pixels = output_dims->h * output_dims->w;
    if (input_dims->n != 1 || output_dims->n != 1 || output_dims->c != c_n || filter_dims->c != c_n ||
        ctx == NULL || ctx->buf == NULL || ctx->size < pixels)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const cmsis_nn_dw_conv_params *p = dw_conv_params;
    int8_t *tmp = (int8_t *)ctx->buf;
#if TJX_DSP
    dw_band g;
    g.in_h = input_dims->h;
    g.in_w = input_dims->w;
    g.out_h = output_dims->h;
    g.out_w = output_dims->w;
    g.kh = filter_dims->h;
    g.kw = filter_dims->w;
    g.sy = p->stride.h;
    g.sx = p->stride.w;
    g.py = p->padding.h;
    g.px = p->padding.w;
    g.c_n = c_n;
    g.rows = TJX_MIN(g.kh, g.in_h);
    g.input_offset = p->input_offset;
    g.output_offset = p->output_offset;
    g.act_min = p->activation.min;
    g.act_max = p->activation.max;
    g.slack = g.rows * g.in_w < pixels;
    dw_pband pg;
    pg.in_h = g.in_h;
    pg.in_w = g.in_w;
    pg.out_h = g.out_h;
    pg.out_w = g.out_w;
    pg.kh = g.kh;
    pg.kw = g.kw;
    pg.sy = g.sy;
    pg.sx = g.sx;
    pg.py = g.py;
    pg.px = g.px;
    pg.c_n = c_n;
    pg.input_offset = g.input_offset;
    pg.output_offset = g.output_offset;
    pg.act_min = g.act_min;
    pg.act_max = g.act_max;
    if (p->dilation.h == 1 && p->dilation.w == 1 && g.sy >= 1 && g.sx >= 1 && pband_setup(&pg))
    {
        int8_t band[DW_PBAND_MAX];
        memset(band, (int8_t)-pg.input_offset, (size_t)(pg.pw * (pg.plane ? pg.ph : pg.kh + 1)));
        for (int32_t c = 0; c < c_n; c++)
        {
            const dw_rq q = dw_rq_make(quant_params->multiplier[c], quant_params->shift[c], pg.output_offset,
                                       pg.act_min, pg.act_max);
            pband_channel(&pg, filter_data, c, bias_data ? bias_data[c] : 0, &q, band, tmp, data);
        }
        return ARM_CMSIS_NN_SUCCESS;
    }
    if (p->dilation.h == 1 && p->dilation.w == 1 && g.sy >= 1 && g.sx >= 1 && g.rows >= 1 &&
        band_is_safe(&g, pixels))
    {
        for (int32_t c = 0; c < c_n; c++)
        {
            const tjx_rq q = tjx_rq_make(quant_params->multiplier[c], quant_params->shift[c]);
            band_channel(&g, filter_data, c, bias_data ? bias_data[c] : 0, &q, tmp, data);
        }
        return ARM_CMSIS_NN_SUCCESS;
    }
#endif
    for (int32_t c = 0; c < c_n; c++)
    {
        inplace_channel_via_tmp(p, input_dims, filter_dims, output_dims, filter_data, c,
                                bias_data ? bias_data[c] : 0, quant_params->multiplier[c], quant_params->shift[c],
                                tmp, data);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
