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
