/*
 * tinyjax C runtime: arm_avgpool_s8 (CMSIS-NN v7 API) and its scratch sizes.
 *
 * The mean of the int8 codes over the window cells inside the input (padding is neither summed
 * nor counted), rounded half away from zero with C's truncating division:
 * (sum + count/2) / count if sum > 0, else (sum - count/2) / count; then the activation clamp.
 * The DSP path sums a whole pixel row of channels into the scratch (one int32 per channel,
 * CMSIS-NN's 4 * C bytes), four channels per word; the plain path one channel at a time.
 */
#include "arm_nnfunctions.h"
#include "tjx_nn_support.h"

#include <stdint.h>

int32_t arm_avgpool_s8_get_buffer_size_dsp(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
    return ch_src * (int32_t)sizeof(int32_t);
}

int32_t arm_avgpool_s8_get_buffer_size_mve(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
    (void)ch_src;
    return 0;
}

int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src)
{
#if TJX_DSP
    return arm_avgpool_s8_get_buffer_size_dsp(dim_dst_width, ch_src);
#else
    (void)dim_dst_width;
    (void)ch_src;
    return 0;
#endif
}

static int8_t rounded_mean(int32_t sum, int32_t count, int32_t act_min, int32_t act_max)
{
    int32_t mean = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
    mean = TJX_MAX(mean, act_min);
    mean = TJX_MIN(mean, act_max);
    return (int8_t)mean;
}

arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx,
                                   const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims,
                                   const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int8_t *output_data)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t c_n = input_dims->c;
    const int32_t act_min = pool_params->activation.min;
    const int32_t act_max = pool_params->activation.max;
    if (input_dims->n < 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
#if TJX_DSP
    if (ctx == NULL || ctx->buf == NULL || ((uintptr_t)ctx->buf & 3u) != 0 ||
        ctx->size < arm_avgpool_s8_get_buffer_size_dsp(output_dims->w, c_n))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    int32_t *sums = (int32_t *)ctx->buf;
#else
    (void)ctx;
#endif
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *in = input_data + b * in_h * in_w * c_n;
        int8_t *out = output_data + b * output_dims->h * output_dims->w * c_n;
        for (int32_t oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t y0 = oy * pool_params->stride.h - pool_params->padding.h;
            const int32_t y_lo = TJX_MAX(y0, 0);
            const int32_t y_hi = TJX_MIN(y0 + filter_dims->h, in_h);
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += c_n)
            {
                const int32_t x0 = ox * pool_params->stride.w - pool_params->padding.w;
                const int32_t x_lo = TJX_MAX(x0, 0);
                const int32_t x_hi = TJX_MIN(x0 + filter_dims->w, in_w);
                const int32_t count = TJX_MAX(y_hi - y_lo, 0) * TJX_MAX(x_hi - x_lo, 0);
                if (count == 0)
                {
                    return ARM_CMSIS_NN_ARG_ERROR; /* a window entirely in the padding */
                }
#if TJX_DSP
                memset(sums, 0, (size_t)c_n * sizeof(int32_t));
                for (int32_t y = y_lo; y < y_hi; y++)
                {
                    for (int32_t x = x_lo; x < x_hi; x++)
                    {
                        const int8_t *px = in + (y * in_w + x) * c_n;
                        int32_t c = 0;
                        for (; c + 4 <= c_n; c += 4)
                        {
                            const uint32_t v = tjx_read_u32(px + c);
                            const uint32_t v02 = tjx_sxtb16(v);
                            const uint32_t v13 = tjx_sxtb16_ror8(v);
                            sums[c] += tjx_lane_lo(v02);
                            sums[c + 1] += tjx_lane_lo(v13);
                            sums[c + 2] += tjx_lane_hi(v02);
                            sums[c + 3] += tjx_lane_hi(v13);
                        }
                        for (; c < c_n; c++)
                        {
                            sums[c] += px[c];
                        }
                    }
                }
                for (int32_t c = 0; c < c_n; c++)
                {
                    out[c] = rounded_mean(sums[c], count, act_min, act_max);
                }
#else
                for (int32_t c = 0; c < c_n; c++)
                {
                    int32_t sum = 0;
                    for (int32_t y = y_lo; y < y_hi; y++)
                    {
                        for (int32_t x = x_lo; x < x_hi; x++)
                        {
                            sum += in[(y * in_w + x) * c_n + c];
                        }
                    }
                    out[c] = rounded_mean(sum, count, act_min, act_max);
                }
#endif
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
