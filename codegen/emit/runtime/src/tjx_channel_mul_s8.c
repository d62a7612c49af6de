/*
 * tinyjax C runtime: tjx_channel_mul_s8, the squeeze-excite gate: x [N, H, W, C] times a gate
 * [N, 1, 1, C] with TFLite's int8 MUL numerics (arm_elementwise_mul_s8's, the gate broadcast).
 */
#include "tjx_kernels.h"
#include "tjx_nn_support.h"

#include <stdint.h>

arm_cmsis_nn_status tjx_channel_mul_s8(const int8_t *input,
                                       const int8_t *gate,
                                       const int32_t input_offset,
                                       const int32_t gate_offset,
                                       int8_t *output,
                                       const int32_t out_offset,
                                       const int32_t out_mult,
                                       const int32_t out_shift,
                                       const int32_t out_activation_min,
                                       const int32_t out_activation_max,
                                       const cmsis_nn_dims *input_dims)
{
    const int32_t c_n = input_dims->c;
    const int32_t pixels = input_dims->h * input_dims->w;
    if (input_dims->n < 0 || input_dims->h < 0 || input_dims->w < 0 || c_n < 0 ||
        out_activation_min > out_activation_max)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        const int8_t *g = gate + b * c_n;
        for (int32_t p = 0; p < pixels; p++)
        {
            const int32_t base = (b * pixels + p) * c_n;
            for (int32_t c = 0; c < c_n; c++)
            {
                const int32_t prod = (input[base + c] + input_offset) * (g[c] + gate_offset);
                output[base + c] = tjx_requantize_s8(prod, out_mult, out_shift, out_offset, out_activation_min,
                                                     out_activation_max);
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
