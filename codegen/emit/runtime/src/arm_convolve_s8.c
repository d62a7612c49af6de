/*
 * tinyjax C runtime: int8 convolutions with CMSIS-NN v7's API (arm_convolve_wrapper_s8 and the
 * four kernels it dispatches to) and their scratch sizes.
 *
 * arm_convolve_s8 and arm_convolve_1_x_n_s8 build im2col columns in the scratch buffer: the
 * int16 values (x + input_offset) of one output pixel's receptive field, tap-major and
 * channel-minor like an OHWI filter row, padding cells 0. The buffer holds two columns
 * (CMSIS-NN's size). The DSP path fills both (two output pixels) and multiplies each filter row
 * with them, four int8 weights per word widened by SXTB16 and paired by SMLAD; to match
 * SXTB16's lanes (bytes 0/2 and 1/3) each group of four column entries is stored in the order
 * 0, 2, 1, 3. The plain path fills one column in natural order.
 *
 * The 1x1 kernels need no buffer: a pixel's channels are already a contiguous column.
 */
#include "arm_nnfunctions.h"
#include "tjx_kernels.h"
#include "tjx_nn_support.h"

#include <stdint.h>

/* ---- scratch sizes ------------------------------------------------------------------------- */

static int32_t align4(int32_t n)
{
    return (n + 3) & ~3;
}

/* DSP and plain: two int16 columns of kh*kw*kc entries, each rounded up to a multiple of 4 */
static int32_t conv_s8_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    return 2 * align4(filter_dims->h * filter_dims->w * input_dims->c) * (int32_t)sizeof(int16_t);
}

/* MVE: four int8 im2col rows of whole 16-byte vectors */
static int32_t conv_s8_buffer_size_mve(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    const int32_t cols = filter_dims->h * filter_dims->w * input_dims->c;
    return 4 * ((cols + 15) / 16) * 16;
}

/* MVE 1xN: the left- and right-padded column slices, when the padded columns split evenly */
static int32_t conv_1_x_n_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                          const cmsis_nn_dims *input_dims,
                                          const cmsis_nn_dims *filter_dims,
                                          const cmsis_nn_dims *output_dims)
{
    const int32_t pad_x = conv_params->padding.w;
    const int32_t stride_x = conv_params->stride.w;
    const int32_t c = input_dims->c;
    const int32_t out_w = output_dims->w;
    const int32_t total_pad = (out_w - 1) * stride_x + filter_dims->w - input_dims->w;
    const int32_t asym = total_pad % 2;
    const int32_t right = (pad_x + asym) != 0 ? TJX_MAX(1, (pad_x + asym + stride_x - 1) / stride_x) : 0;
    const int32_t left = pad_x != 0 ? TJX_MAX(1, (pad_x + stride_x - 1) / stride_x) : 0;
    const int32_t middle = TJX_MAX(out_w - (right + left), 0);
    if (right + middle + left != out_w)
    {
        return conv_s8_buffer_size_mve(input_dims, filter_dims);
    }
    const int32_t pad_left = pad_x * c;
    const int32_t pad_right = asym ? right * c : pad_left;
    const int32_t n_left = filter_dims->w * c;
    return TJX_MAX(n_left + pad_left, n_left - c + pad_right);
}

int32_t arm_convolve_s8_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    return conv_s8_buffer_size(input_dims, filter_dims);
}

int32_t arm_convolve_1x1_s8_fast_get_buffer_size(const cmsis_nn_dims *input_dims)
{
    (void)input_dims;
    return 0; /* GCC builds of CMSIS-NN ask for nothing on any path */
}

int32_t arm_convolve_1_x_n_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                              const cmsis_nn_dims *input_dims,
                                              const cmsis_nn_dims *filter_dims,
                                              const cmsis_nn_dims *output_dims)
{
    (void)conv_params;
    (void)output_dims;
    return conv_s8_buffer_size(input_dims, filter_dims);
}

tjx_conv_kernel tjx_convolve_wrapper_s8_select(const cmsis_nn_conv_params *conv_params,
                                               const cmsis_nn_dims *input_dims,
                                               const cmsis_nn_dims *filter_dims)
{
    const int32_t dilation_1 = conv_params->dilation.w == 1 && conv_params->dilation.h == 1;
    if (conv_params->padding.w == 0 && conv_params->padding.h == 0 && filter_dims->w == 1 && filter_dims->h == 1 &&
        dilation_1 && input_dims->c == filter_dims->c)
    {
        return (conv_params->stride.w == 1 && conv_params->stride.h == 1) ? TJX_CONV_1X1_S8_FAST : TJX_CONV_1X1_S8;
    }
    if (input_dims->h == 1 && conv_params->dilation.w == 1 && filter_dims->h == 1 &&
        (conv_params->stride.w * input_dims->c) % 4 == 0 && input_dims->c == filter_dims->c)
    {
        return TJX_CONV_1_X_N_S8;
    }
    return TJX_CONV_S8;
}

/*
 * CMSIS-NN's size functions do not test filter_dims->c == input_dims->c as its dispatch does:
 * for a grouped 1x1 or 1xN convolution they name a size the general kernel cannot run with.
 * Kept as they are: the sizes must be CMSIS-NN's (tinyjax plans no grouped convolutions).
 */
static int32_t wrapper_buffer_size(const cmsis_nn_conv_params *conv_params,
                                   const cmsis_nn_dims *input_dims,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int32_t mve)
{
    if (conv_params->padding.w == 0 && conv_params->padding.h == 0 && filter_dims->w == 1 && filter_dims->h == 1 &&
        conv_params->dilation.w == 1 && conv_params->dilation.h == 1)
    {
        return 0; /* 1x1, fast (GCC) or strided */
    }
    if (input_dims->h == 1 && conv_params->dilation.w == 1 && filter_dims->h == 1 &&
        (conv_params->stride.w * input_dims->c) % 4 == 0)
    {
        return mve ? conv_1_x_n_buffer_size_mve(conv_params, input_dims, filter_dims, output_dims)
                   : conv_s8_buffer_size(input_dims, filter_dims);
    }
    return mve ? conv_s8_buffer_size_mve(input_dims, filter_dims) : conv_s8_buffer_size(input_dims, filter_dims);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims)
{
    /* the DSP and plain paths need the same scratch for convolutions */
    return wrapper_buffer_size(conv_params, input_dims, filter_dims, output_dims, 0);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims)
{
    return wrapper_buffer_size(conv_params, input_dims, filter_dims, output_dims, 0);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims)
{
    return wrapper_buffer_size(conv_params, input_dims, filter_dims, output_dims, 1);
}

/* ---- im2col convolution (arm_convolve_s8, arm_convolve_1_x_n_s8) --------------------------- */

typedef struct
{
    const int8_t *input; /* the batch's first pixel */
    int32_t in_h, in_w;  /* upscaled size (input_dims) */
    int32_t in_c;        /* channels of a stored pixel */
    int32_t row_w;       /* stored pixels per row */
    int32_t up_y, up_x;  /* 1: every other row/column is inserted zeros */
    int32_t kh, kw, kc;  /* filter; kc channels per group */
    int32_t sy, sx, py, px, dy, dx;
    int32_t input_offset;
    int32_t reorder; /* store groups of four entries as 0, 2, 1, 3 (DSP dot product) */
} im2col_geometry;

/* The column of output pixel (oy, ox) over input channels ch0 .. ch0 + kc - 1, in natural order,
   then (reorder) each whole group of four entries as 0, 2, 1, 3: words (e0, e1), (e2, e3) become
   (e0, e2), (e1, e3). */
static void fill_column(int16_t *col, const im2col_geometry *g, int32_t oy, int32_t ox, int32_t ch0)
{
    const int32_t kc = g->kc;
    const int16_t off = (int16_t)g->input_offset;
    int16_t *dst = col;
    for (int32_t ky = 0; ky < g->kh; ky++)
    {
        const int32_t iy = oy * g->sy - g->py + ky * g->dy;
        const int32_t row_ok = iy >= 0 && iy < g->in_h && !(g->up_y && (iy & 1));
        const int8_t *row = row_ok ? g->input + (iy >> g->up_y) * g->row_w * g->in_c + ch0 : g->input;
        for (int32_t kx = 0; kx < g->kw; kx++, dst += kc)
        {
            const int32_t ix = ox * g->sx - g->px + kx * g->dx;
            if (row_ok && ix >= 0 && ix < g->in_w && !(g->up_x && (ix & 1)))
            {
                const int8_t *src = row + (ix >> g->up_x) * g->in_c;
                for (int32_t c = 0; c < kc; c++)
                {
                    dst[c] = (int16_t)(src[c] + off);
                }
            }
            else
            {
                for (int32_t c = 0; c < kc; c++)
                {
                    dst[c] = 0;
                }
            }
        }
    }
    if (g->reorder)
    {
        const int32_t cols4 = (g->kh * g->kw * kc) & ~3;
        for (int32_t i = 0; i < cols4; i += 4)
        {
            const uint32_t a = tjx_read_u32(col + i);
            const uint32_t b = tjx_read_u32(col + i + 2);
            tjx_write_u32(col + i, (a & 0xFFFFu) | (b << 16));
            tjx_write_u32(col + i + 2, (a >> 16) | (b & 0xFFFF0000u));
        }
    }
}

#if !TJX_DSP
/* acc + filter row . column (natural order) */
static int32_t dot_column(const int8_t *w, const int16_t *col, int32_t cols, int32_t acc)
{
    for (int32_t i = 0; i < cols; i++)
    {
        acc = tjx_mac(acc, w[i], col[i]);
    }
    return acc;
}
#else
/* acc0 + w . col0 and acc1 + w . col1, columns in 0, 2, 1, 3 order per group of four */
static void dot_two_columns_dsp(const int8_t *w, const int16_t *col0, const int16_t *col1, int32_t cols, int32_t *acc0,
                                int32_t *acc1)
{
    int32_t a0 = *acc0;
    int32_t a1 = *acc1;
    int32_t i = 0;
    for (; i + 4 <= cols; i += 4)
    {
        const uint32_t wv = tjx_read_u32(w + i);
        const uint32_t w02 = tjx_sxtb16(wv);
        const uint32_t w13 = tjx_sxtb16_ror8(wv);
        a0 = tjx_smlad(w02, tjx_read_u32(col0 + i), a0);
        a0 = tjx_smlad(w13, tjx_read_u32(col0 + i + 2), a0);
        a1 = tjx_smlad(w02, tjx_read_u32(col1 + i), a1);
        a1 = tjx_smlad(w13, tjx_read_u32(col1 + i + 2), a1);
    }
    for (; i < cols; i++)
    {
        a0 = tjx_mac(a0, w[i], col0[i]);
        a1 = tjx_mac(a1, w[i], col1[i]);
    }
    *acc0 = a0;
    *acc1 = a1;
}

static int32_t dot_column_dsp(const int8_t *w, const int16_t *col, int32_t cols, int32_t acc)
{
    int32_t i = 0;
    for (; i + 4 <= cols; i += 4)
    {
        const uint32_t wv = tjx_read_u32(w + i);
        acc = tjx_smlad(tjx_sxtb16(wv), tjx_read_u32(col + i), acc);
        acc = tjx_smlad(tjx_sxtb16_ror8(wv), tjx_read_u32(col + i + 2), acc);
    }
    for (; i < cols; i++)
    {
        acc = tjx_mac(acc, w[i], col[i]);
    }
    return acc;
}
#endif

#if TJX_DSP
/* two outputs of one channel: requantised (tjx_rq_fast with the output offset folded where it
   applies, SSAT for the full int8 range; else the exact form), offset and clamped */
static TJX_ALWAYS_INLINE void im2col_out2(int32_t acc0, int32_t acc1, int32_t mult, int32_t shift, int32_t out_offset,
                                          int32_t act_min, int32_t act_max, int32_t full, int8_t *o0, int8_t *o1)
{
    tjx_rq q = tjx_rq_make(mult, shift);
    if (tjx_rq_fold_offset(&q, out_offset))
    {
        const int32_t r0 = tjx_rq_fast(acc0, q.mult, q.hi, q.e1);
        const int32_t r1 = tjx_rq_fast(acc1, q.mult, q.hi, q.e1);
        if (full)
        {
            *o0 = (int8_t)tjx_ssat8(r0);
            *o1 = (int8_t)tjx_ssat8(r1);
        }
        else
        {
            *o0 = tjx_clamp_s8(r0, act_min, act_max);
            *o1 = tjx_clamp_s8(r1, act_min, act_max);
        }
        return;
    }
    *o0 = tjx_requantize_s8(acc0, mult, shift, out_offset, act_min, act_max);
    *o1 = tjx_requantize_s8(acc1, mult, shift, out_offset, act_min, act_max);
}
#endif

static arm_cmsis_nn_status im2col_convolve(const cmsis_nn_context *ctx,
                                           const cmsis_nn_conv_params *conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *upscale_dims,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    if (ctx == NULL || ctx->buf == NULL || ((uintptr_t)ctx->buf & 3u) != 0 ||
        ctx->size < conv_s8_buffer_size(input_dims, filter_dims))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t in_c = input_dims->c;
    const int32_t kc = filter_dims->c;
    const int32_t out_c = output_dims->c;
    if (kc <= 0 || in_c % kc != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t groups = in_c / kc;
    if (out_c % groups != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t oc_per_group = out_c / groups;

    im2col_geometry g;
    g.in_h = input_dims->h;
    g.in_w = input_dims->w;
    g.in_c = in_c;
    g.up_y = (upscale_dims != NULL && upscale_dims->h == 2) ? 1 : 0;
    g.up_x = (upscale_dims != NULL && upscale_dims->w == 2) ? 1 : 0;
    g.row_w = g.in_w >> g.up_x;
    g.kh = filter_dims->h;
    g.kw = filter_dims->w;
    g.kc = kc;
    g.sy = conv_params->stride.h;
    g.sx = conv_params->stride.w;
    g.py = conv_params->padding.h;
    g.px = conv_params->padding.w;
    g.dy = conv_params->dilation.h;
    g.dx = conv_params->dilation.w;
    g.input_offset = conv_params->input_offset;
    g.reorder = TJX_DSP;

    const int32_t cols = g.kh * g.kw * kc;
    const int32_t pixels = output_dims->h * output_dims->w;
    const int32_t in_batch = (g.in_h >> g.up_y) * g.row_w * in_c;
    int16_t *col0 = (int16_t *)ctx->buf;
#if TJX_DSP
    int16_t *col1 = col0 + align4(cols);
#endif
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    const int32_t out_offset = conv_params->output_offset;
    const int32_t act_min = conv_params->activation.min;
    const int32_t act_max = conv_params->activation.max;
#if TJX_DSP
    const int32_t full = act_min == -128 && act_max == 127;
#endif

    for (int32_t b = 0; b < input_dims->n; b++)
    {
        g.input = input_data + b * in_batch;
        int8_t *out = output_data + b * pixels * out_c;
        for (int32_t grp = 0; grp < groups; grp++)
        {
            const int32_t oc0 = grp * oc_per_group;
            int32_t p = 0;
#if TJX_DSP
            for (; p + 2 <= pixels; p += 2)
            {
                fill_column(col0, &g, p / output_dims->w, p % output_dims->w, grp * kc);
                fill_column(col1, &g, (p + 1) / output_dims->w, (p + 1) % output_dims->w, grp * kc);
                for (int32_t oc = oc0; oc < oc0 + oc_per_group; oc++)
                {
                    int32_t acc0 = bias_data ? bias_data[oc] : 0;
                    int32_t acc1 = acc0;
                    dot_two_columns_dsp(filter_data + oc * cols, col0, col1, cols, &acc0, &acc1);
                    im2col_out2(acc0, acc1, mult[oc], shift[oc], out_offset, act_min, act_max, full,
                                &out[p * out_c + oc], &out[(p + 1) * out_c + oc]);
                }
            }
#endif
            for (; p < pixels; p++)
            {
                fill_column(col0, &g, p / output_dims->w, p % output_dims->w, grp * kc);
                for (int32_t oc = oc0; oc < oc0 + oc_per_group; oc++)
                {
                    const int32_t bias = bias_data ? bias_data[oc] : 0;
#if TJX_DSP
                    const int32_t acc = dot_column_dsp(filter_data + oc * cols, col0, cols, bias);
#else
                    const int32_t acc = dot_column(filter_data + oc * cols, col0, cols, bias);
#endif
                    out[p * out_c + oc] = tjx_requantize_s8(acc, mult[oc], shift[oc], out_offset, act_min, act_max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_convolve_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_conv_params *conv_params,
                                    const cmsis_nn_per_channel_quant_params *quant_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const int8_t *filter_data,
                                    const cmsis_nn_dims *bias_dims,
                                    const int32_t *bias_data,
                                    const cmsis_nn_dims *upscale_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data)
{
    (void)bias_dims;
    return im2col_convolve(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                           bias_data, upscale_dims, output_dims, output_data);
}

arm_cmsis_nn_status arm_convolve_1_x_n_s8(const cmsis_nn_context *ctx,
                                          const cmsis_nn_conv_params *conv_params,
                                          const cmsis_nn_per_channel_quant_params *quant_params,
                                          const cmsis_nn_dims *input_dims,
                                          const int8_t *input_data,
                                          const cmsis_nn_dims *filter_dims,
                                          const int8_t *filter_data,
                                          const cmsis_nn_dims *bias_dims,
                                          const int32_t *bias_data,
                                          const cmsis_nn_dims *output_dims,
                                          int8_t *output_data)
{
    (void)bias_dims;
    if (input_dims->h != 1 || conv_params->dilation.w != 1 || ctx == NULL || ctx->buf == NULL ||
        conv_params->stride.w == 0 || (conv_params->stride.w * input_dims->c) % 4 != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    /* One input row: the im2col columns are slices of it, the general kernel computes the same. */
    return im2col_convolve(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                           bias_data, NULL, output_dims, output_data);
}

/* ---- 1x1 convolutions ---------------------------------------------------------------------- */

#if !TJX_DSP
/* out[oc] for one input pixel x of in_c channels (an OHWI 1x1 filter row is in_c weights) */
static void pointwise_pixel(const int8_t *x,
                            int32_t in_c,
                            const cmsis_nn_conv_params *conv_params,
                            const cmsis_nn_per_channel_quant_params *quant_params,
                            const int8_t *filter_data,
                            const int32_t *bias_data,
                            int32_t out_c,
                            int8_t *out)
{
    for (int32_t oc = 0; oc < out_c; oc++)
    {
        const int32_t bias = bias_data ? bias_data[oc] : 0;
        const int32_t acc = tjx_dot_s8(x, conv_params->input_offset, filter_data + oc * in_c, 0, in_c, bias);
        out[oc] = tjx_requantize_s8(acc,
                                    quant_params->multiplier[oc],
                                    quant_params->shift[oc],
                                    conv_params->output_offset,
                                    conv_params->activation.min,
                                    conv_params->activation.max);
    }
}
#endif

#if TJX_DSP
/*
 * The DSP path of the 1x1 convolutions: a matrix product blocked two output channels by two
 * pixels, eight input channels per loop step. Per four input channels, one word of each pixel and
 * of each filter row is widened (SXTAB16 adds the input offset to bytes 0/2, its ROR #8 form to
 * bytes 1/3; SXTB16 for the weights) and each of the four accumulators takes two SMLADs: 4 loads,
 * 8 widenings and 8 SMLADs for 16 MACs. A channel's requantisation is set up once (tjx_rq) for
 * all its pixels, and pairs of channels whose requantisation is tjx_rq_fast get a copy of the
 * loop that uses it unconditionally.
 */
typedef struct
{
    const int8_t *in;   /* pixel 0 */
    int32_t px_step;    /* bytes from one pixel to the next */
    int32_t row_pixels; /* pixels per row */
    int32_t row_step;   /* bytes from one row of pixels to the next */
    int32_t rows;
    int32_t in_c;
    int32_t out_c;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} pw_geometry;

/* four channels of pixels x0, x1 = x0 + n and filter rows w0, w1 = w0 + n: the two SMLADs of each
   of the four accumulators */
#define PW_STEP_2X2(x, w, n)                                                                                   \
    do                                                                                                         \
    {                                                                                                          \
        const uint32_t xa_ = tjx_read_u32(x);                                                                  \
        const uint32_t xb_ = tjx_read_u32((x) + (n));                                                          \
        const uint32_t wa_ = tjx_read_u32(w);                                                                  \
        const uint32_t wb_ = tjx_read_u32((w) + (n));                                                          \
        const uint32_t xa02_ = tjx_sxtab16(off2, xa_);                                                         \
        const uint32_t xb02_ = tjx_sxtab16(off2, xb_);                                                         \
        const uint32_t wa02_ = tjx_sxtb16(wa_);                                                                \
        a00 = tjx_smlad(xa02_, wa02_, a00);                                                                    \
        a10 = tjx_smlad(xb02_, wa02_, a10);                                                                    \
        const uint32_t wb02_ = tjx_sxtb16(wb_);                                                                \
        a01 = tjx_smlad(xa02_, wb02_, a01);                                                                    \
        a11 = tjx_smlad(xb02_, wb02_, a11);                                                                    \
        const uint32_t xa13_ = tjx_sxtab16_ror8(off2, xa_);                                                    \
        const uint32_t xb13_ = tjx_sxtab16_ror8(off2, xb_);                                                    \
        const uint32_t wa13_ = tjx_sxtb16_ror8(wa_);                                                           \
        a00 = tjx_smlad(xa13_, wa13_, a00);                                                                    \
        a10 = tjx_smlad(xb13_, wa13_, a10);                                                                    \
        const uint32_t wb13_ = tjx_sxtb16_ror8(wb_);                                                           \
        a01 = tjx_smlad(xa13_, wb13_, a01);                                                                    \
        a11 = tjx_smlad(xb13_, wb13_, a11);                                                                    \
    } while (0)

/* acc[0..3] += (x0 . w0, x1 . w0, x0 . w1, x1 . w1), rows x1 and w1 n bytes after x0 and w0; eight
   channels per loop step */
static TJX_ALWAYS_INLINE void pw_dot_2x2(const int8_t *x0, const int8_t *w0, int32_t n, uint32_t off2,
                                         int32_t input_offset, int32_t *acc)
{
    int32_t a00 = acc[0];
    int32_t a10 = acc[1];
    int32_t a01 = acc[2];
    int32_t a11 = acc[3];
    const int8_t *x = x0;
    const int8_t *w = w0;
    const int8_t *const x_end8 = x0 + (n & ~7);
    while (x != x_end8)
    {
        PW_STEP_2X2(x, w, n);
        PW_STEP_2X2(x + 4, w + 4, n);
        x += 8;
        w += 8;
    }
    if (n & 4)
    {
        PW_STEP_2X2(x, w, n);
    }
    for (int32_t i = n & ~3; i < n; i++)
    {
        const int32_t xa = x0[i] + input_offset;
        const int32_t xb = x0[n + i] + input_offset;
        a00 = tjx_mac(a00, xa, w0[i]);
        a10 = tjx_mac(a10, xb, w0[i]);
        a01 = tjx_mac(a01, xa, w0[n + i]);
        a11 = tjx_mac(a11, xb, w0[n + i]);
    }
    acc[0] = a00;
    acc[1] = a10;
    acc[2] = a01;
    acc[3] = a11;
}

/* acc[0..1] += (x . w0, x . w1), w1 n bytes after w0 */
static inline void pw_dot_1x2(const int8_t *x, const int8_t *w0, int32_t n, uint32_t off2, int32_t input_offset,
                              int32_t *acc)
{
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    const int8_t *w1 = w0 + n;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)
    {
        const uint32_t xv = tjx_read_u32(x + i);
        const uint32_t x02 = tjx_sxtab16(off2, xv);
        const uint32_t x13 = tjx_sxtab16_ror8(off2, xv);
        const uint32_t wa = tjx_read_u32(w0 + i);
        const uint32_t wb = tjx_read_u32(w1 + i);
        a0 = tjx_smlad(x02, tjx_sxtb16(wa), a0);
        a0 = tjx_smlad(x13, tjx_sxtb16_ror8(wa), a0);
        a1 = tjx_smlad(x02, tjx_sxtb16(wb), a1);
        a1 = tjx_smlad(x13, tjx_sxtb16_ror8(wb), a1);
    }
    for (; i < n; i++)
    {
        const int32_t xv = x[i] + input_offset;
        a0 = tjx_mac(a0, xv, w0[i]);
        a1 = tjx_mac(a1, xv, w1[i]);
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* one output: requantise, offset and clamp. mode (known at the call) 2: tjx_rq_fast with the output
   offset folded (tjx_rq_fold_offset) and the full int8 range (SSAT); 1: folded, clamp; 0: exact form */
static TJX_ALWAYS_INLINE int8_t pw_out(const tjx_rq *q, int32_t mode, int32_t acc, int32_t out_offset, int32_t act_min,
                            int32_t act_max)
{
    if (mode == 2)
    {
        return (int8_t)tjx_ssat8(tjx_rq_fast(acc, q->mult, q->hi, q->e1));
    }
    if (mode == 1)
    {
        return tjx_clamp_s8(tjx_rq_fast(acc, q->mult, q->hi, q->e1), act_min, act_max);
    }
    return tjx_clamp_s8(tjx_requantize(acc, q->mult, q->shift) + out_offset, act_min, act_max);
}

/* output channels oc and oc + 1 (filter rows w, w + in_c) for every pixel; mode: pw_out's */
static TJX_ALWAYS_INLINE void pw_two_channels(const pw_geometry *g, const int8_t *w, const tjx_rq *q0,
                                              const tjx_rq *q1, int32_t b0, int32_t b1, int8_t *o, int32_t mode)
{
    const int32_t n = g->in_c;
    const int32_t out_c = g->out_c;
    const int32_t out_offset = g->output_offset;
    const int32_t act_min = g->act_min;
    const int32_t act_max = g->act_max;
    const uint32_t off2 = tjx_dup16(g->input_offset);
    for (int32_t r = 0; r < g->rows; r++)
    {
        const int8_t *x = g->in + r * g->row_step;
        int32_t p = 0;
        if (g->px_step == n)
        {
            for (; p + 2 <= g->row_pixels; p += 2)
            {
                int32_t acc[4] = {b0, b0, b1, b1};
                pw_dot_2x2(x, w, n, off2, g->input_offset, acc);
                o[0] = pw_out(q0, mode, acc[0], out_offset, act_min, act_max);
                o[1] = pw_out(q1, mode, acc[2], out_offset, act_min, act_max);
                o[out_c] = pw_out(q0, mode, acc[1], out_offset, act_min, act_max);
                o[out_c + 1] = pw_out(q1, mode, acc[3], out_offset, act_min, act_max);
                x += 2 * n;
                o += 2 * out_c;
            }
        }
        for (; p < g->row_pixels; p++)
        {
            int32_t acc[2] = {b0, b1};
            pw_dot_1x2(x, w, n, off2, g->input_offset, acc);
            o[0] = pw_out(q0, mode, acc[0], out_offset, act_min, act_max);
            o[1] = pw_out(q1, mode, acc[1], out_offset, act_min, act_max);
            x += g->px_step;
            o += out_c;
        }
    }
}

static void pointwise_dsp(const pw_geometry *g,
                          const cmsis_nn_per_channel_quant_params *quant_params,
                          const int8_t *filter_data,
                          const int32_t *bias_data,
                          int8_t *out)
{
    const int32_t n = g->in_c;
    const int32_t out_c = g->out_c;
    int32_t oc = 0;
    for (; oc + 2 <= out_c; oc += 2)
    {
        const int8_t *w = filter_data + oc * n;
        tjx_rq q0 = tjx_rq_make(quant_params->multiplier[oc], quant_params->shift[oc]);
        tjx_rq q1 = tjx_rq_make(quant_params->multiplier[oc + 1], quant_params->shift[oc + 1]);
        const int32_t b0 = bias_data ? bias_data[oc] : 0;
        const int32_t b1 = bias_data ? bias_data[oc + 1] : 0;
        tjx_rq f0 = q0, f1 = q1;
        if (tjx_rq_fold_offset(&f0, g->output_offset) && tjx_rq_fold_offset(&f1, g->output_offset))
        {
            if (g->act_min == -128 && g->act_max == 127)
            {
                pw_two_channels(g, w, &f0, &f1, b0, b1, out + oc, 2);
            }
            else
            {
                pw_two_channels(g, w, &f0, &f1, b0, b1, out + oc, 1);
            }
        }
        else
        {
            pw_two_channels(g, w, &q0, &q1, b0, b1, out + oc, 0);
        }
    }
    if (oc < out_c)
    {
        const int8_t *w = filter_data + oc * n;
        const tjx_rq q = tjx_rq_make(quant_params->multiplier[oc], quant_params->shift[oc]);
        const int32_t b = bias_data ? bias_data[oc] : 0;
        int8_t *o = out + oc;
        for (int32_t r = 0; r < g->rows; r++)
        {
            const int8_t *x = g->in + r * g->row_step;
            for (int32_t p = 0; p < g->row_pixels; p++)
            {
                const int32_t acc = tjx_dot_s8_dsp(x, g->input_offset, w, 0, n, b);
                *o = tjx_clamp_s8(tjx_rq_apply(&q, acc) + g->output_offset, g->act_min, g->act_max);
                x += g->px_step;
                o += out_c;
            }
        }
    }
}

static void pw_geometry_init(pw_geometry *g, const cmsis_nn_conv_params *conv_params, int32_t in_c, int32_t out_c)
{
    g->in_c = in_c;
    g->out_c = out_c;
    g->input_offset = conv_params->input_offset;
    g->output_offset = conv_params->output_offset;
    g->act_min = conv_params->activation.min;
    g->act_max = conv_params->activation.max;
}
#endif /* TJX_DSP */

arm_cmsis_nn_status arm_convolve_1x1_s8_fast(const cmsis_nn_context *ctx,
                                             const cmsis_nn_conv_params *conv_params,
                                             const cmsis_nn_per_channel_quant_params *quant_params,
                                             const cmsis_nn_dims *input_dims,
                                             const int8_t *input_data,
                                             const cmsis_nn_dims *filter_dims,
                                             const int8_t *filter_data,
                                             const cmsis_nn_dims *bias_dims,
                                             const int32_t *bias_data,
                                             const cmsis_nn_dims *output_dims,
                                             int8_t *output_data)
{
    (void)ctx;
    (void)bias_dims;
    if (conv_params->padding.w != 0 || conv_params->padding.h != 0 || conv_params->stride.w != 1 ||
        conv_params->stride.h != 1 || filter_dims->c != input_dims->c)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t pixels = input_dims->n * input_dims->h * input_dims->w;
#if TJX_DSP
    pw_geometry g;
    pw_geometry_init(&g, conv_params, in_c, out_c);
    g.in = input_data;
    g.px_step = in_c;
    g.row_pixels = pixels;
    g.row_step = 0;
    g.rows = 1;
    pointwise_dsp(&g, quant_params, filter_data, bias_data, output_data);
#else
    for (int32_t p = 0; p < pixels; p++)
    {
        pointwise_pixel(input_data + p * in_c, in_c, conv_params, quant_params, filter_data, bias_data, out_c,
                        output_data + p * out_c);
    }
#endif
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_convolve_1x1_s8(const cmsis_nn_context *ctx,
                                        const cmsis_nn_conv_params *conv_params,
                                        const cmsis_nn_per_channel_quant_params *quant_params,
                                        const cmsis_nn_dims *input_dims,
                                        const int8_t *input_data,
                                        const cmsis_nn_dims *filter_dims,
                                        const int8_t *filter_data,
                                        const cmsis_nn_dims *bias_dims,
                                        const int32_t *bias_data,
                                        const cmsis_nn_dims *output_dims,
                                        int8_t *output_data)
{
    (void)ctx;
    (void)bias_dims;
    if (conv_params->padding.w != 0 || conv_params->padding.h != 0 || filter_dims->c != input_dims->c)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * input_dims->h * input_dims->w * in_c;
        int8_t *out = output_data + b * output_dims->h * output_dims->w * out_c;
#if TJX_DSP
        pw_geometry g;
        pw_geometry_init(&g, conv_params, in_c, out_c);
        g.in = in;
        g.px_step = conv_params->stride.w * in_c;
        g.row_pixels = output_dims->w;
        g.row_step = conv_params->stride.h * input_dims->w * in_c;
        g.rows = output_dims->h;
        pointwise_dsp(&g, quant_params, filter_data, bias_data, out);
#else
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++)
            {
                const int8_t *x = in + (oy * conv_params->stride.h * input_dims->w + ox * conv_params->stride.w) * in_c;
                pointwise_pixel(x, in_c, conv_params, quant_params, filter_data, bias_data, out_c,
                                out + (oy * output_dims->w + ox) * out_c);
            }
        }
#endif
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* ---- the wrapper --------------------------------------------------------------------------- */

arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context *ctx,
                                            const cmsis_nn_conv_params *conv_params,
                                            const cmsis_nn_per_channel_quant_params *quant_params,
                                            const cmsis_nn_dims *input_dims,
                                            const int8_t *input_data,
                                            const cmsis_nn_dims *filter_dims,
                                            const int8_t *filter_data,
                                            const cmsis_nn_dims *bias_dims,
                                            const int32_t *bias_data,
                                            const cmsis_nn_dims *output_dims,
                                            int8_t *output_data)
{
    switch (tjx_convolve_wrapper_s8_select(conv_params, input_dims, filter_dims))
    {
    case TJX_CONV_1X1_S8_FAST:
        return arm_convolve_1x1_s8_fast(ctx, conv_params, quant_params, input_dims, input_data, filter_dims,
                                        filter_data, bias_dims, bias_data, output_dims, output_data);
    case TJX_CONV_1X1_S8:
        return arm_convolve_1x1_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                   bias_dims, bias_data, output_dims, output_data);
    case TJX_CONV_1_X_N_S8:
        return arm_convolve_1_x_n_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims,
                                     filter_data, bias_dims, bias_data, output_dims, output_data);
    case TJX_CONV_S8:
    default:
        return arm_convolve_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                               bias_dims, bias_data, NULL, output_dims, output_data);
    }
}
