/*
 * One test case of the runtime on a microcontroller: the kernel to call, its arguments and the
 * output the numpy reference (tinyjax.codegen.intops) computed for them. test_c_kernels_qemu.py
 * writes the cases (cases.c); kernel_check.c runs them.
 */
#ifndef KERNEL_CHECK_H
#define KERNEL_CHECK_H

#include "arm_nn_types.h"

typedef enum
{
    CASE_CONV = 0,       /* arm_convolve_wrapper_s8 */
    CASE_DW = 1,         /* arm_depthwise_conv_wrapper_s8 */
    CASE_DW_INPLACE = 2, /* tjx_depthwise_conv_inplace_s8 */
    CASE_FC = 3,         /* arm_fully_connected_s8 */
    CASE_AVGPOOL = 4,    /* arm_avgpool_s8 */
    CASE_ADD = 5         /* arm_elementwise_add_s8 */
} case_kind;

typedef struct
{
    case_kind kind;
    cmsis_nn_dims input_dims, filter_dims, output_dims;
    int32_t input_offset, input2_offset, filter_offset, output_offset, ch_mult;
    cmsis_nn_tile stride, padding;
    cmsis_nn_activation act;
    /* per-tensor requantisation (fully connected: out_*; add: all) */
    int32_t in1_mult, in1_shift, in2_mult, in2_shift, left_shift, out_mult, out_shift;
    const int8_t *input, *input2, *filter;
    const int32_t *bias, *multiplier, *shift;
    const int8_t *expected;
    int32_t expected_size;
    int32_t scratch_dsp, scratch_plain; /* the op table's scratch on each path */
} kernel_case;

extern const kernel_case kernel_cases[];
extern const int32_t kernel_case_count;

#endif
