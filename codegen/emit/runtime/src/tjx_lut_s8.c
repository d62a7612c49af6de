/* tinyjax C runtime: tjx_lut_s8, a 256-entry int8 table activation (SiLU, sigmoid, hard-swish). */
#include "tjx_kernels.h"

#include <stddef.h>
#include <stdint.h>

arm_cmsis_nn_status tjx_lut_s8(const int8_t *input, const int8_t *table, int8_t *output, const int32_t block_size)
{
    if (block_size < 0 || table == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (int32_t i = 0; i < block_size; i++)
    {
        output[i] = table[input[i] + 128]; /* read before the write: in place is fine */
    }
    return ARM_CMSIS_NN_SUCCESS;
}
