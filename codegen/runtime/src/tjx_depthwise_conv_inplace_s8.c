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
    for (int32_t oy = 0; oy < output_dims->h; oy++)
    {
        for (int32_t ox = 0; ox < output_dims->w; ox++)
        {
            const int32_t acc = tjx_depthwise_taps(data + c, input_dims->h, input_dims->w, c_n, filter_data + c,
                                                   filter_dims->h, filter_dims->w, c_n,
                                                   oy * p->stride.h - p->padding.h, ox * p->stride.w - p->padding.w,
                                                   p->dilation.h, p->dilation.w, p->input_offset, bias);
            tmp[oy * output_dims->w + ox] =
                tjx_requantize_s8(acc, mult, shift, p->output_offset, p->activation.min, p->activation.max);
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

/* one output pixel whose window lies inside the input: acc + sum of x * w over the taps */
static TJX_ALWAYS_INLINE int32_t band_interior(const int8_t *const *rows, int32_t x0, int32_t kh, int32_t kw,
                                               const uint32_t *wpair, const int32_t *w, int32_t acc)
{
    const int32_t groups = kw >> 2;
    for (int32_t ky = 0; ky < kh; ky++)
    {
        const int8_t *r = rows[ky] + x0;
        const uint32_t *wp = wpair + ky * 2 * groups;
        for (int32_t gi = 0; gi < groups; gi++)
        {
            const uint32_t v = tjx_read_u32(r + 4 * gi);
            acc = tjx_smlad(tjx_sxtb16(v), wp[2 * gi], acc);
            acc = tjx_smlad(tjx_sxtb16_ror8(v), wp[2 * gi + 1], acc);
        }
        for (int32_t kx = 4 * groups; kx < kw; kx++)
        {
            acc = tjx_mac(acc, r[kx], w[ky * kw + kx]);
        }
    }
    return acc;
}

/* one output pixel of any window: acc + sum of (x + input_offset) * w over the taps inside */
static int32_t band_edge(const dw_band *g, const int8_t *const *rows, int32_t ky0, int32_t ky1, int32_t ix,
                         const int32_t *w, int32_t acc)
{
    const int32_t kx0 = TJX_MAX(0, -ix);
    const int32_t kx1 = TJX_MIN(g->kw, g->in_w - ix);
    for (int32_t ky = ky0; ky < ky1; ky++)
    {
        const int8_t *r = rows[ky] + ix;
        for (int32_t kx = kx0; kx < kx1; kx++)
        {
            acc = tjx_mac(acc, r[kx] + g->input_offset, w[ky * g->kw + kx]);
        }
    }
    return acc;
}

static TJX_ALWAYS_INLINE void band_channel_k(const dw_band *g, const int8_t *filter_data, int32_t c, int32_t bias,
                                             const tjx_rq *q, int8_t *band, int8_t *data, int32_t kh, int32_t kw)
{
    int32_t w[DW_MAX_K * DW_MAX_K];
    uint32_t wpair[DW_MAX_K * 2];
    int32_t wsum = 0;
    const int32_t groups = kw >> 2;
    for (int32_t ky = 0; ky < kh; ky++)
    {
        for (int32_t kx = 0; kx < kw; kx++)
        {
            w[ky * kw + kx] = filter_data[(ky * kw + kx) * g->c_n + c];
            wsum += w[ky * kw + kx];
        }
        for (int32_t gi = 0; gi < groups; gi++)
        {
            const int32_t *t = w + ky * kw + 4 * gi;
            wpair[ky * 2 * groups + 2 * gi] = tjx_pack16(t[0], t[2]);
            wpair[ky * 2 * groups + 2 * gi + 1] = tjx_pack16(t[1], t[3]);
        }
    }
    const int32_t folded = tjx_mac(bias, g->input_offset, wsum);
    /* interior columns: ox_lo <= ox < ox_hi */
    int32_t ox_lo = (g->px + g->sx - 1) / g->sx;
    int32_t ox_hi = g->in_w - kw + g->px >= 0 ? (g->in_w - kw + g->px) / g->sx + 1 : 0;
    ox_hi = TJX_MIN(ox_hi, g->out_w);
    ox_lo = TJX_MIN(ox_lo, ox_hi);
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
        const int32_t full = ky0 == 0 && ky1 == kh;
        for (int32_t ox = 0; ox < g->out_w; ox++)
        {
            const int32_t ix = ox * g->sx - g->px;
            int32_t acc;
            if (full && ox >= ox_lo && ox < ox_hi)
            {
                acc = band_interior(rows, ix, kh, kw, wpair, w, folded);
            }
            else
            {
                acc = band_edge(g, rows, ky0, ky1, ix, w, bias);
            }
            *out = tjx_clamp_s8(tjx_rq_apply(q, acc) + g->output_offset, g->act_min, g->act_max);
            out += g->c_n;
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
