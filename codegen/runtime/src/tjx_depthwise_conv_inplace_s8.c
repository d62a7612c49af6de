/*
 * tinyjax C runtime: tjx_depthwise_conv_inplace_s8, the depthwise convolution that writes its
 * output over its input (TinyEngine's in-place depthwise), and its temporary's size.
 *
 * Channel by channel: output channel c goes to the OH * OW byte temporary, computed from input
 * channel c alone, then is scattered over slots p * C + c. Every slot written belongs to channel
 * c (its index is c modulo C), whose input is no longer needed; the other channels' bytes are
 * untouched. Numerics of arm_depthwise_conv_s8 with ch_mult 1 (tjx_depthwise_taps).
 */
#include "tjx_kernels.h"
#include "tjx_nn_support.h"

#include <stdint.h>

int32_t tjx_depthwise_conv_inplace_s8_get_buffer_size(const cmsis_nn_dims *output_dims)
{
    return output_dims->h * output_dims->w;
}

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
    for (int32_t c = 0; c < c_n; c++)
    {
        const int32_t bias = bias_data ? bias_data[c] : 0;
        const int32_t mult = quant_params->multiplier[c];
        const int32_t shift = quant_params->shift[c];
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
    return ARM_CMSIS_NN_SUCCESS;
}
