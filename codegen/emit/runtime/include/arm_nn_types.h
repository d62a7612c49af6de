/*
 * tinyjax C runtime: the CMSIS-NN v7 types that tinyjax's generated code uses.
 *
 * Names, members and member order are those of CMSIS-NN v7's Include/arm_nn_types.h, so code
 * written against this header compiles unchanged against the real library (make CMSIS_NN=...).
 * Only the int8 inference subset is declared. Written for tinyjax; no CMSIS-NN code or text.
 * The include guard is CMSIS-NN's own: when both headers are on the include path (tinyjax's own
 * kernels next to the real library), whichever comes first defines the types, once.
 */
#ifndef ARM_NN_TYPES_H
#define ARM_NN_TYPES_H

#include <stdint.h>

/** Status of every kernel call. */
typedef enum
{
    ARM_CMSIS_NN_SUCCESS = 0,        /* done */
    ARM_CMSIS_NN_ARG_ERROR = -1,     /* an argument is out of what the kernel supports */
    ARM_CMSIS_NN_NO_IMPL_ERROR = -2, /* no implementation for this configuration */
    ARM_CMSIS_NN_FAILURE = -3        /* logical error */
} arm_cmsis_nn_status;

/** A 2-D quantity (stride, padding, dilation): w is along the width, h along the height. */
typedef struct
{
    int32_t w;
    int32_t h;
} cmsis_nn_tile;

/** Scratch memory handed to a kernel: `size` bytes at `buf` (NULL when the kernel needs none). */
typedef struct
{
    void *buf;
    int32_t size;
} cmsis_nn_context;

/** Tensor dimensions, NHWC for activations; the meaning of n and c for filters is per kernel. */
typedef struct
{
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} cmsis_nn_dims;

/** Per-output-channel requantisation: Q31 multipliers and shifts (positive = left). */
typedef struct
{
    int32_t *multiplier;
    int32_t *shift;
} cmsis_nn_per_channel_quant_params;

/** Per-tensor requantisation: one Q31 multiplier and one shift (positive = left). */
typedef struct
{
    int32_t multiplier;
    int32_t shift;
} cmsis_nn_per_tensor_quant_params;

/** Output clamp, inclusive, in output codes. */
typedef struct
{
    int32_t min;
    int32_t max;
} cmsis_nn_activation;

/** Convolution: input_offset = -input zero point, output_offset = +output zero point. */
typedef struct
{
    int32_t input_offset;
    int32_t output_offset;
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_conv_params;

/** Depthwise convolution: output channels = ch_mult * input channels. */
typedef struct
{
    int32_t input_offset;
    int32_t output_offset;
    int32_t ch_mult;
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_dw_conv_params;

/** Pooling. */
typedef struct
{
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_activation activation;
} cmsis_nn_pool_params;

/** Fully connected: filter_offset = -filter zero point (0 for symmetric weights). */
typedef struct
{
    int32_t input_offset;
    int32_t filter_offset;
    int32_t output_offset;
    cmsis_nn_activation activation;
} cmsis_nn_fc_params;

#endif /* ARM_NN_TYPES_H */
