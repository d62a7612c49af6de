/* tinyjax C runtime: tjx_pad_s8, spatial padding with a constant code (the zero point). */
#include "tjx_kernels.h"
#include "tjx_nn_support.h"

#include <stdint.h>

arm_cmsis_nn_status tjx_pad_s8(const cmsis_nn_dims *input_dims,
                               const int8_t *input,
                               const cmsis_nn_tile *pad_before,
                               const cmsis_nn_tile *pad_after,
                               const int32_t pad_value,
                               const cmsis_nn_dims *output_dims,
                               int8_t *output)
{
    const int32_t top = pad_before->h;
    const int32_t left = pad_before->w;
    const int32_t c_n = input_dims->c;
    if (top < 0 || left < 0 || pad_after->h < 0 || pad_after->w < 0 || pad_value < -128 || pad_value > 127 ||
        input_dims->n < 0 || input_dims->h < 0 || input_dims->w < 0 || c_n < 0 || output_dims->n != input_dims->n ||
        output_dims->h != top + input_dims->h + pad_after->h ||
        output_dims->w != left + input_dims->w + pad_after->w || output_dims->c != c_n)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const int value = pad_value;
    const size_t out_row = (size_t)output_dims->w * (size_t)c_n;
    const size_t in_row = (size_t)input_dims->w * (size_t)c_n;
    const size_t left_bytes = (size_t)left * (size_t)c_n;
    const size_t right_bytes = (size_t)pad_after->w * (size_t)c_n;
    for (int32_t b = 0; b < input_dims->n; b++)
    {
        for (int32_t y = 0; y < output_dims->h; y++)
        {
            int8_t *out = output + ((size_t)b * (size_t)output_dims->h + (size_t)y) * out_row;
            const int32_t iy = y - top;
            if (iy < 0 || iy >= input_dims->h)
            {
                memset(out, value, out_row);
                continue;
            }
            const int8_t *in = input + ((size_t)b * (size_t)input_dims->h + (size_t)iy) * in_row;
            memset(out, value, left_bytes);
            memcpy(out + left_bytes, in, in_row);
            memset(out + left_bytes + in_row, value, right_bytes);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
