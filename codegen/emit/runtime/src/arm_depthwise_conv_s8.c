/*
 * tinyjax C runtime: int8 depthwise convolutions with CMSIS-NN v7's API
 * (arm_depthwise_conv_wrapper_s8 and the three kernels it dispatches to) and their scratch sizes.
 *
 * Output channel ic * ch_mult + m reads input channel ic; filter [1, KH, KW, C_in * ch_mult].
 * Plain path: one output value at a time over the taps inside the input (padding adds nothing).
 * DSP path (ch_mult 1: the 3x3 and opt kernels): four channels at a time; a word of four input
 * bytes and a word of four weights are widened to int16 lanes (bytes 0/2 and 1/3, the input
 * offset added by SXTAB16) and each lane pair is accumulated into its own channel by
 * SMLABB/SMLATT. It reads no scratch: arm_depthwise_conv_s8_opt still asks CMSIS-NN's DSP size,
 * so that the real library can replace this one in the same memory plan.
 */
#include "arm_nnfunctions.h"
#include "tjx_kernels.h"
#include "tjx_nn_support.h"

#include <stdint.h>

/* ---- scratch sizes ------------------------------------------------------------------------- */

#define TJX_CH_IN_BLOCK_MVE 124 /* CMSIS-NN's channel block of its MVE depthwise kernel */

static int32_t opt_buffer_size_dsp(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    return input_dims->c * filter_dims->w * filter_dims->h * (int32_t)sizeof(int16_t);
}

static int32_t opt_buffer_size_mve(const cmsis_nn_dims *filter_dims)
{
    return 4 * TJX_CH_IN_BLOCK_MVE * filter_dims->w * filter_dims->h;
}

int32_t arm_depthwise_conv_s8_opt_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
#if TJX_DSP
    return opt_buffer_size_dsp(input_dims, filter_dims);
#else
    (void)input_dims;
    (void)filter_dims;
    return 0;
#endif
}

/* CMSIS-NN's size rule tests C_in == C_out where its dispatch tests ch_mult == 1 (the same). */
static int32_t is_opt_case(const cmsis_nn_dw_conv_params *p, const cmsis_nn_dims *input_dims,
                           const cmsis_nn_dims *output_dims)
{
    return input_dims->c == output_dims->c && input_dims->n == 1 && p->dilation.w == 1 && p->dilation.h == 1;
}

static int32_t is_3x3_case(const cmsis_nn_dw_conv_params *p, const cmsis_nn_dims *filter_dims)
{
    return filter_dims->w == 3 && filter_dims->h == 3 && p->padding.h <= 1 && p->padding.w <= 1;
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims)
{
    if (!is_opt_case(dw_conv_params, input_dims, output_dims) || is_3x3_case(dw_conv_params, filter_dims))
    {
        return 0;
    }
    return opt_buffer_size_dsp(input_dims, filter_dims);
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims)
{
#if TJX_DSP
    return arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(dw_conv_params, input_dims, filter_dims, output_dims);
#else
    (void)dw_conv_params;
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0; /* no kernel needs scratch on the plain path */
#endif
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_mve(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims)
{
    int32_t size = is_opt_case(dw_conv_params, input_dims, output_dims) ? opt_buffer_size_mve(filter_dims) : 0;
    if (input_dims->c == 1 && output_dims->c > 1)
    {
        /* run as a convolution with an (out_c, kh, kw, 1) filter: its MVE scratch plus a
           reordered copy of the weights */
        const cmsis_nn_conv_params conv_params = {dw_conv_params->input_offset, dw_conv_params->output_offset,
                                                  dw_conv_params->stride,       dw_conv_params->padding,
                                                  dw_conv_params->dilation,     dw_conv_params->activation};
        const cmsis_nn_dims conv_filter = {filter_dims->c, filter_dims->h, filter_dims->w, filter_dims->n};
        const int32_t to_conv =
            arm_convolve_wrapper_s8_get_buffer_size_mve(&conv_params, input_dims, &conv_filter, output_dims) +
            filter_dims->c * filter_dims->h * filter_dims->w * filter_dims->n;
        size = TJX_MAX(size, to_conv);
    }
    return size;
}

tjx_dw_conv_kernel tjx_depthwise_conv_wrapper_s8_select(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                        const cmsis_nn_dims *input_dims,
                                                        const cmsis_nn_dims *filter_dims)
{
    if (dw_conv_params->ch_mult == 1 && input_dims->n == 1 && dw_conv_params->dilation.w == 1 &&
        dw_conv_params->dilation.h == 1)
    {
        return is_3x3_case(dw_conv_params, filter_dims) ? TJX_DW_CONV_3X3_S8 : TJX_DW_CONV_S8_OPT;
    }
    return TJX_DW_CONV_S8;
}

/* ---- kernels ------------------------------------------------------------------------------- */

/* Any ch_mult, dilation, batches: one output value at a time. */
static void depthwise_generic(const cmsis_nn_dw_conv_params *p,
                              const cmsis_nn_per_channel_quant_params *quant_params,
                              const cmsis_nn_dims *input_dims,
                              const int8_t *input_data,
                              const cmsis_nn_dims *filter_dims,
                              const int8_t *filter_data,
                              const int32_t *bias_data,
                              const cmsis_nn_dims *output_dims,
                              int8_t *output_data)
{
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t ch_mult = p->ch_mult;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * input_dims->h * input_dims->w * in_c;
        int8_t *out = output_data + b * output_dims->h * output_dims->w * out_c;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += out_c)
            {
                for (int32_t ic = 0; ic < in_c; ic++)
                {
                    for (int32_t m = 0; m < ch_mult; m++)
                    {
                        const int32_t oc = ic * ch_mult + m;
                        const int32_t acc = tjx_depthwise_taps(
                            in + ic, input_dims->h, input_dims->w, in_c, filter_data + oc, filter_dims->h,
                            filter_dims->w, out_c, oy * p->stride.h - p->padding.h, ox * p->stride.w - p->padding.w,
                            p->dilation.h, p->dilation.w, p->input_offset, bias_data ? bias_data[oc] : 0);
                        out[oc] = tjx_requantize_s8(acc, quant_params->multiplier[oc], quant_params->shift[oc],
                                                    p->output_offset, p->activation.min, p->activation.max);
                    }
                }
            }
        }
    }
}

#if TJX_DSP
/* ch_mult 1, four channels per step (see the file comment); the last C % 4 channels one by one. */
static void depthwise_ch1_dsp(const cmsis_nn_dw_conv_params *p,
                              const cmsis_nn_per_channel_quant_params *quant_params,
                              const cmsis_nn_dims *input_dims,
                              const int8_t *input_data,
                              const cmsis_nn_dims *filter_dims,
                              const int8_t *filter_data,
                              const int32_t *bias_data,
                              const cmsis_nn_dims *output_dims,
                              int8_t *output_data)
{
    const int32_t c_n = input_dims->c;
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const uint32_t in_off = tjx_dup16(p->input_offset);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * in_h * in_w * c_n;
        int8_t *out = output_data + b * output_dims->h * output_dims->w * c_n;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t y0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += c_n)
            {
                const int32_t x0 = ox * p->stride.w - p->padding.w;
                int32_t c = 0;
                for (; c + 4 <= c_n; c += 4)
                {
                    int32_t acc0 = bias_data ? bias_data[c] : 0;
                    int32_t acc1 = bias_data ? bias_data[c + 1] : 0;
                    int32_t acc2 = bias_data ? bias_data[c + 2] : 0;
                    int32_t acc3 = bias_data ? bias_data[c + 3] : 0;
                    for (int32_t ky = 0; ky < kh; ky++)
                    {
                        const int32_t iy = y0 + ky * p->dilation.h;
                        if (iy < 0 || iy >= in_h)
                        {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; kx++)
                        {
                            const int32_t ix = x0 + kx * p->dilation.w;
                            if (ix < 0 || ix >= in_w)
                            {
                                continue;
                            }
                            const uint32_t xv = tjx_read_u32(in + (iy * in_w + ix) * c_n + c);
                            const uint32_t wv = tjx_read_u32(filter_data + (ky * kw + kx) * c_n + c);
                            const uint32_t x02 = tjx_sxtab16(in_off, xv);
                            const uint32_t x13 = tjx_sxtab16(in_off, tjx_ror8(xv));
                            const uint32_t w02 = tjx_sxtb16(wv);
                            const uint32_t w13 = tjx_sxtb16_ror8(wv);
                            acc0 = tjx_smlabb(x02, w02, acc0);
                            acc2 = tjx_smlatt(x02, w02, acc2);
                            acc1 = tjx_smlabb(x13, w13, acc1);
                            acc3 = tjx_smlatt(x13, w13, acc3);
                        }
                    }
                    const int32_t lo = p->activation.min;
                    const int32_t hi = p->activation.max;
                    out[c] = tjx_requantize_s8(acc0, mult[c], shift[c], p->output_offset, lo, hi);
                    out[c + 1] = tjx_requantize_s8(acc1, mult[c + 1], shift[c + 1], p->output_offset, lo, hi);
                    out[c + 2] = tjx_requantize_s8(acc2, mult[c + 2], shift[c + 2], p->output_offset, lo, hi);
                    out[c + 3] = tjx_requantize_s8(acc3, mult[c + 3], shift[c + 3], p->output_offset, lo, hi);
                }
                for (; c < c_n; c++)
                {
                    const int32_t acc = tjx_depthwise_taps(in + c, in_h, in_w, c_n, filter_data + c, kh, kw, c_n, y0, x0,
                                                           p->dilation.h, p->dilation.w, p->input_offset,
                                                           bias_data ? bias_data[c] : 0);
                    out[c] = tjx_requantize_s8(acc, mult[c], shift[c], p->output_offset, p->activation.min,
                                               p->activation.max);
                }
            }
        }
    }
}
#endif

static void depthwise_ch1(const cmsis_nn_dw_conv_params *p,
                          const cmsis_nn_per_channel_quant_params *quant_params,
                          const cmsis_nn_dims *input_dims,
                          const int8_t *input_data,
                          const cmsis_nn_dims *filter_dims,
                          const int8_t *filter_data,
                          const int32_t *bias_data,
                          const cmsis_nn_dims *output_dims,
                          int8_t *output_data)
{
    /* ch_mult is 1 here whatever dw_conv_params says: the callers checked C_in == C_out */
    cmsis_nn_dw_conv_params one = *p;
    one.ch_mult = 1;
#if TJX_DSP
    depthwise_ch1_dsp(&one, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims,
                      output_data);
#else
    depthwise_generic(&one, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims,
                      output_data);
#endif
}

arm_cmsis_nn_status arm_depthwise_conv_s8(const cmsis_nn_context *ctx,
                                          const cmsis_nn_dw_conv_params *dw_conv_params,
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
    if (dw_conv_params->ch_mult < 1 || output_dims->c != input_dims->c * dw_conv_params->ch_mult)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    depthwise_generic(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                      output_dims, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_depthwise_conv_3x3_s8(const cmsis_nn_context *ctx,
                                              const cmsis_nn_dw_conv_params *dw_conv_params,
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
    if (input_dims->c != output_dims->c || dw_conv_params->padding.w > 1 || filter_dims->w != 3 ||
        filter_dims->h != 3)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    depthwise_ch1(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                  output_dims, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_depthwise_conv_s8_opt(const cmsis_nn_context *ctx,
                                              const cmsis_nn_dw_conv_params *dw_conv_params,
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
    if (input_dims->c != output_dims->c)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    if ((ctx == NULL || ctx->buf == NULL) && arm_depthwise_conv_s8_opt_get_buffer_size(input_dims, filter_dims) > 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    depthwise_ch1(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                  output_dims, output_data);
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
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
    switch (tjx_depthwise_conv_wrapper_s8_select(dw_conv_params, input_dims, filter_dims))
    {
    case TJX_DW_CONV_3X3_S8:
        return arm_depthwise_conv_3x3_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                         filter_data, bias_dims, bias_data, output_dims, output_data);
    case TJX_DW_CONV_S8_OPT:
        return arm_depthwise_conv_s8_opt(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                         filter_data, bias_dims, bias_data, output_dims, output_data);
    case TJX_DW_CONV_S8:
    default:
        return arm_depthwise_conv_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                     filter_data, bias_dims, bias_data, output_dims, output_data);
    }
}
