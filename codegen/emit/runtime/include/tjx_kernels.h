/*
 * tinyjax C runtime: tinyjax's own int8 kernels (no CMSIS-NN counterpart), in CMSIS-NN's style:
 * an arm_cmsis_nn_status return, cmsis_nn_dims for shapes, offsets as in arm_nnfunctions.h
 * (input offset = -zero point, output offset = +zero point). Reentrant: no globals, no static
 * state, no allocation. Numerics: tinyjax.codegen.intops, bit for bit.
 */
#ifndef TJX_KERNELS_H
#define TJX_KERNELS_H

#include "arm_nn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * In-place depthwise convolution (TinyEngine's idea), ch_mult 1, one batch.
 *
 * data holds the input [1, H, W, C] on entry and the output [1, OH, OW, C] on return. For each
 * channel c in turn, output channel c is computed into the temporary ctx->buf (OH * OW bytes,
 * tjx_depthwise_conv_inplace_s8_get_buffer_size) from input channel c alone, then written over
 * channel c's slots data[p * C + c], p < OH * OW. Those slots hold no other channel's data, so
 * the input channels still to be read are intact. The buffer must hold max(H*W, OH*OW) * C bytes;
 * nothing else is touched. Any stride, padding and dilation (the planner uses stride 1 and 2).
 * Numerics: arm_depthwise_conv_s8 with ch_mult 1.
 *
 * ARG_ERROR: input_dims->n != 1, output_dims->c != input_dims->c (ch_mult != 1),
 * filter_dims->c != input_dims->c, ctx->buf NULL or ctx->size < OH * OW, output_dims->n != 1.
 */
arm_cmsis_nn_status tjx_depthwise_conv_inplace_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params *quant_params,
                                                  const cmsis_nn_dims *input_dims,
                                                  const cmsis_nn_dims *filter_dims,
                                                  const int8_t *filter_data,
                                                  const cmsis_nn_dims *bias_dims,
                                                  const int32_t *bias_data,
                                                  const cmsis_nn_dims *output_dims,
                                                  int8_t *data);

/** The temporary of tjx_depthwise_conv_inplace_s8: OH * OW bytes. */
int32_t tjx_depthwise_conv_inplace_s8_get_buffer_size(const cmsis_nn_dims *output_dims);

/**
 * Table activation: output[i] = table[input[i] + 128] for block_size elements; table has 256
 * int8 entries (entry 0 for input -128). output may equal input (in place).
 * ARG_ERROR: block_size < 0, table NULL.
 */
arm_cmsis_nn_status tjx_lut_s8(const int8_t *input, const int8_t *table, int8_t *output, const int32_t block_size);

/**
 * Channel gate (squeeze-excite): input [N, H, W, C] times gate [N, 1, 1, C], TFLite int8 MUL:
 * out = clamp(requantize((x + input_offset) * (g + gate_offset), out_mult, out_shift) + out_offset,
 *             out_activation_min, out_activation_max),
 * g being the gate entry of x's batch and channel. output may equal input (in place).
 * ARG_ERROR: a negative dimension, out_activation_min > out_activation_max.
 */
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
                                       const cmsis_nn_dims *input_dims);

/**
 * Spatial padding: output [N, top + H + bottom, left + W + right, C] is the input surrounded by
 * pad_value (the input zero point, i.e. real 0). pad_before gives top (.h) and left (.w),
 * pad_after bottom (.h) and right (.w). input and output must not overlap.
 * ARG_ERROR: negative padding, pad_value outside [-128, 127], output_dims not the padded shape.
 */
arm_cmsis_nn_status tjx_pad_s8(const cmsis_nn_dims *input_dims,
                               const int8_t *input,
                               const cmsis_nn_tile *pad_before,
                               const cmsis_nn_tile *pad_after,
                               const int32_t pad_value,
                               const cmsis_nn_dims *output_dims,
                               int8_t *output);

/**
 * Rectangle copy between NHWC int8 tensors of one batch: the h x w x ch block at (src_y, src_x) of
 * src (rows of src_w pixels) goes to (dst_y, dst_x) of dst (rows of dst_w pixels), row by row
 * (memmove). Patch-based inference copies a patch's input region out of the image and its output
 * region into the stage's output map with it.
 * ARG_ERROR: a NULL pointer, a negative size or position, a rectangle wider than its tensor.
 */
arm_cmsis_nn_status tjx_copy_region_s8(const int8_t *src,
                                       const int32_t src_w,
                                       const int32_t src_y,
                                       const int32_t src_x,
                                       int8_t *dst,
                                       const int32_t dst_w,
                                       const int32_t dst_y,
                                       const int32_t dst_x,
                                       const int32_t h,
                                       const int32_t w,
                                       const int32_t ch);

/** Which kernel arm_convolve_wrapper_s8 runs (the wrapper's dispatch, for tests and tools). */
typedef enum
{
    TJX_CONV_1X1_S8_FAST = 0, /* arm_convolve_1x1_s8_fast */
    TJX_CONV_1X1_S8 = 1,      /* arm_convolve_1x1_s8 */
    TJX_CONV_1_X_N_S8 = 2,    /* arm_convolve_1_x_n_s8 */
    TJX_CONV_S8 = 3           /* arm_convolve_s8 */
} tjx_conv_kernel;

tjx_conv_kernel tjx_convolve_wrapper_s8_select(const cmsis_nn_conv_params *conv_params,
                                               const cmsis_nn_dims *input_dims,
                                               const cmsis_nn_dims *filter_dims);

/** Which kernel arm_depthwise_conv_wrapper_s8 runs. */
typedef enum
{
    TJX_DW_CONV_3X3_S8 = 0, /* arm_depthwise_conv_3x3_s8 */
    TJX_DW_CONV_S8_OPT = 1, /* arm_depthwise_conv_s8_opt */
    TJX_DW_CONV_S8 = 2      /* arm_depthwise_conv_s8 */
} tjx_dw_conv_kernel;

tjx_dw_conv_kernel tjx_depthwise_conv_wrapper_s8_select(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                        const cmsis_nn_dims *input_dims,
                                                        const cmsis_nn_dims *filter_dims);

/** 1 when this build runs the DSP-extension code paths (and reports their scratch), else 0. */
int32_t tjx_runtime_uses_dsp(void);

#ifdef __cplusplus
}
#endif

#endif /* TJX_KERNELS_H */
