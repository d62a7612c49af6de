/*
 * tinyjax C runtime: arm_elementwise_add_s8 (CMSIS-NN v7 API), TFLite's int8 ADD.
 *
 * Each input is offset, shifted left by left_shift (TFLite: 20) and requantised to a common
 * scale; the sum is requantised to the output. The DSP path widens four bytes of each input per
 * step (SXTAB16 adds the offset) and takes each int16 lane sign-extended before the shift, so it
 * is exact for every left_shift in [0, 31] (not only for shifts >= 16). Both paths read an
 * element before writing it, so the output may be either input.
 */
#include "arm_nnfunctions.h"
#include "tjx_nn_support.h"

#include <stdint.h>

typedef struct
{
    int32_t m1, s1, m2, s2, left_shift, out_offset, out_mult, out_shift, act_min, act_max;
} add_params;

/* one output from the two offset inputs */
static int8_t add_one(const add_params *p, int32_t x1, int32_t x2)
{
    const int32_t a = tjx_requantize((int32_t)((uint32_t)x1 << (uint32_t)p->left_shift), p->m1, p->s1);
    const int32_t b = tjx_requantize((int32_t)((uint32_t)x2 << (uint32_t)p->left_shift), p->m2, p->s2);
    return tjx_requantize_s8(tjx_add_wrap(a, b), p->out_mult, p->out_shift, p->out_offset, p->act_min, p->act_max);
}

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_1_mult,
                                           const int32_t input_1_shift,
                                           const int32_t input_2_offset,
                                           const int32_t input_2_mult,
                                           const int32_t input_2_shift,
                                           const int32_t left_shift,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
    const add_params p = {input_1_mult, input_1_shift, input_2_mult,       input_2_shift,     left_shift,
                          out_offset,   out_mult,      out_shift,          out_activation_min, out_activation_max};
    int32_t i = 0;
#if TJX_DSP
    const uint32_t off1 = tjx_dup16(input_1_offset);
    const uint32_t off2 = tjx_dup16(input_2_offset);
    for (; i + 4 <= block_size; i += 4)
    {
        const uint32_t v1 = tjx_read_u32(input_1_vect + i);
        const uint32_t v2 = tjx_read_u32(input_2_vect + i);
        const uint32_t a02 = tjx_sxtab16(off1, v1); /* elements 0 and 2 */
        const uint32_t a13 = tjx_sxtab16(off1, tjx_ror8(v1));
        const uint32_t b02 = tjx_sxtab16(off2, v2);
        const uint32_t b13 = tjx_sxtab16(off2, tjx_ror8(v2));
        const uint32_t r0 = (uint8_t)add_one(&p, tjx_lane_lo(a02), tjx_lane_lo(b02));
        const uint32_t r1 = (uint8_t)add_one(&p, tjx_lane_lo(a13), tjx_lane_lo(b13));
        const uint32_t r2 = (uint8_t)add_one(&p, tjx_lane_hi(a02), tjx_lane_hi(b02));
        const uint32_t r3 = (uint8_t)add_one(&p, tjx_lane_hi(a13), tjx_lane_hi(b13));
        tjx_write_u32(output + i, r0 | (r1 << 8) | (r2 << 16) | (r3 << 24));
    }
#endif
    for (; i < block_size; i++)
    {
        output[i] = add_one(&p, input_1_vect[i] + input_1_offset, input_2_vect[i] + input_2_offset);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
