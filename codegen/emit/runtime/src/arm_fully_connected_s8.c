/*
 * tinyjax C runtime: arm_fully_connected_s8 (CMSIS-NN v7 API) and its scratch sizes.
 * One dot product per output: plain C, or four entries per step on the DSP path
 * (tjx_dot_s8: SXTAB16 adds the input and filter offsets, SMLAD multiplies).
 */
#include "arm_nnfunctions.h"
#include "tjx_nn_support.h"

#include <stdint.h>

int32_t arm_fully_connected_s8_get_buffer_size_dsp(const cmsis_nn_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}

int32_t arm_fully_connected_s8_get_buffer_size_mve(const cmsis_nn_dims *filter_dims)
{
    return filter_dims->c * (int32_t)sizeof(int32_t); /* CMSIS-NN's MVE kernel sums */
}

int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
    (void)filter_dims;
    return 0; /* DSP and plain C alike */
}

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
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
    const int32_t depth = filter_dims->n; /* input features */
    const int32_t outputs = output_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *x = input_data + b * depth;
        int8_t *out = output_data + b * outputs;
        for (int32_t o = 0; o < outputs; o++)
        {
            const int32_t acc = tjx_dot_s8(x, fc_params->input_offset, filter_data + o * depth,
                                           fc_params->filter_offset, depth, bias_data ? bias_data[o] : 0);
            out[o] = tjx_requantize_s8(acc, quant_params->multiplier, quant_params->shift, fc_params->output_offset,
                                       fc_params->activation.min, fc_params->activation.max);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
