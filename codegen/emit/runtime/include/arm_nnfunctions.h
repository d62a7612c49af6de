/*
 * tinyjax C runtime: the CMSIS-NN v7 functions tinyjax's generated code calls.
 *
 * Signatures are CMSIS-NN v7.0.0's (Include/arm_nnfunctions.h), so generated code links either
 * this runtime or the real library. The implementations (../src) are tinyjax's own, bit-exact
 * with CMSIS-NN's default build (arm_nn_requantize's double rounding) and with tinyjax's numpy
 * reference (tinyjax.codegen.intops).
 *
 * Code paths: built with __ARM_FEATURE_DSP (Cortex-M4/M7) the hot loops use the DSP extension's
 * SIMD instructions and every *_get_buffer_size returns CMSIS-NN's DSP number; otherwise plain C
 * and the plain-C numbers. Both paths give identical outputs. There is no MVE (Helium) path: the
 * *_mve size functions only report what the real library needs on Cortex-M55.
 *
 * Conventions (all kernels):
 *  - activations NHWC int8; conv filters OHWI [C_out, KH, KW, C_in]; depthwise filters
 *    [1, KH, KW, C_in * ch_mult]; fully connected filters [out][in] with filter_dims->n = in and
 *    filter_dims->c = out;
 *  - input_offset = -input zero point, output_offset = +output zero point; padded cells read the
 *    input zero point (they add nothing);
 *  - bias may be NULL (zero);
 *  - offsets are negated int8 zero points (input/filter offset in [-127, 128], output offset in
 *    [-128, 127]), as CMSIS-NN documents them: on the DSP path x + offset must fit an int16 lane;
 *  - ctx->buf, where a kernel uses it, is aligned to 4 bytes (the memory planner aligns to 16);
 *  - per channel: out = clamp(requantize(acc, multiplier[oc], shift[oc]) + output_offset,
 *    activation.min, activation.max);
 *  - a kernel returns ARM_CMSIS_NN_ARG_ERROR where CMSIS-NN v7 does, and also where its arguments
 *    cannot describe a computation: filter channels that do not divide (grouped arm_convolve_s8)
 *    or match (1x1 kernels) the input's, output channels that are not C_in * ch_mult, a scratch
 *    buffer the kernel reads that is NULL, misaligned or smaller than its *_get_buffer_size;
 *  - no globals, no static state, no allocation: every function is reentrant.
 */
#ifndef ARM_NNFUNCTIONS_H
#define ARM_NNFUNCTIONS_H

#include "arm_nn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Convolution
 * ------------------------------------------------------------------------------------------- */

/**
 * Convolution, dispatching like CMSIS-NN v7's wrapper:
 *  - 1x1 filter, no padding, dilation 1, filter_dims->c == input_dims->c:
 *    stride 1 -> arm_convolve_1x1_s8_fast, else arm_convolve_1x1_s8;
 *  - input height 1, filter height 1, dilation.w 1, (stride.w * C_in) % 4 == 0,
 *    filter_dims->c == input_dims->c -> arm_convolve_1_x_n_s8;
 *  - otherwise arm_convolve_s8.
 * ctx must hold arm_convolve_wrapper_s8_get_buffer_size() bytes.
 */
arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context *ctx,
                                            const cmsis_nn_conv_params *conv_params,
                                            const cmsis_nn_per_channel_quant_params *quant_params,
                                            const cmsis_nn_dims *input_dims,
                                            const int8_t *input_data,
                                            const cmsis_nn_dims *filter_dims,
                                            const int8_t *filter_data,
                                            const cmsis_nn_dims *bias_dims,
                                            const int32_t *bias_data,
                                            const cmsis_nn_dims *output_dims,
                                            int8_t *output_data);

/** Scratch bytes of arm_convolve_wrapper_s8 on this build's path (DSP or plain C). */
int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims);
/** ... on the DSP path (Cortex-M4/M7, GCC), whatever this build's path. */
int32_t arm_convolve_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims);
/** ... on CMSIS-NN's MVE path (Cortex-M55, GCC), whatever this build's path. */
int32_t arm_convolve_wrapper_s8_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims);

/**
 * General convolution (any filter size, stride, padding, dilation; batches). Grouped when
 * filter_dims->c < input_dims->c: groups = C_in / filter_dims->c, each group of C_out / groups
 * output channels reads its own C_in / groups input channels. upscale_dims (may be NULL): where
 * its h (w) is 2 the input is read as if zeros (the zero point) were inserted between its rows
 * (columns), input_dims giving the upscaled size (used by transposed convolution).
 * ctx->buf must hold arm_convolve_s8_get_buffer_size() bytes (never NULL).
 */
arm_cmsis_nn_status arm_convolve_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_conv_params *conv_params,
                                    const cmsis_nn_per_channel_quant_params *quant_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const int8_t *filter_data,
                                    const cmsis_nn_dims *bias_dims,
                                    const int32_t *bias_data,
                                    const cmsis_nn_dims *upscale_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data);

/** Two int16 im2col columns of KH*KW*C_in entries rounded up to a multiple of 4 (DSP and plain). */
int32_t arm_convolve_s8_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims);

/** 1x1 convolution, stride 1, no padding: a matrix product over pixels. No scratch. */
arm_cmsis_nn_status arm_convolve_1x1_s8_fast(const cmsis_nn_context *ctx,
                                             const cmsis_nn_conv_params *conv_params,
                                             const cmsis_nn_per_channel_quant_params *quant_params,
                                             const cmsis_nn_dims *input_dims,
                                             const int8_t *input_data,
                                             const cmsis_nn_dims *filter_dims,
                                             const int8_t *filter_data,
                                             const cmsis_nn_dims *bias_dims,
                                             const int32_t *bias_data,
                                             const cmsis_nn_dims *output_dims,
                                             int8_t *output_data);

/** 0 with GCC on every path (CMSIS-NN asks 4 * C_in only when built by Arm Compiler 6). */
int32_t arm_convolve_1x1_s8_fast_get_buffer_size(const cmsis_nn_dims *input_dims);

/** 1x1 convolution with any stride, no padding. No scratch. */
arm_cmsis_nn_status arm_convolve_1x1_s8(const cmsis_nn_context *ctx,
                                        const cmsis_nn_conv_params *conv_params,
                                        const cmsis_nn_per_channel_quant_params *quant_params,
                                        const cmsis_nn_dims *input_dims,
                                        const int8_t *input_data,
                                        const cmsis_nn_dims *filter_dims,
                                        const int8_t *filter_data,
                                        const cmsis_nn_dims *bias_dims,
                                        const int32_t *bias_data,
                                        const cmsis_nn_dims *output_dims,
                                        int8_t *output_data);

/** 1xN convolution over a one-row input ((stride.w * C_in) % 4 == 0, dilation.w 1). */
arm_cmsis_nn_status arm_convolve_1_x_n_s8(const cmsis_nn_context *ctx,
                                          const cmsis_nn_conv_params *conv_params,
                                          const cmsis_nn_per_channel_quant_params *quant_params,
                                          const cmsis_nn_dims *input_dims,
                                          const int8_t *input_data,
                                          const cmsis_nn_dims *filter_dims,
                                          const int8_t *filter_data,
                                          const cmsis_nn_dims *bias_dims,
                                          const int32_t *bias_data,
                                          const cmsis_nn_dims *output_dims,
                                          int8_t *output_data);

/** Same as arm_convolve_s8_get_buffer_size on the DSP and plain paths. */
int32_t arm_convolve_1_x_n_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                              const cmsis_nn_dims *input_dims,
                                              const cmsis_nn_dims *filter_dims,
                                              const cmsis_nn_dims *output_dims);

/* ---------------------------------------------------------------------------------------------
 * Depthwise convolution
 * ------------------------------------------------------------------------------------------- */

/**
 * Depthwise convolution, dispatching like CMSIS-NN v7's wrapper (DSP and plain paths):
 * ch_mult 1, one batch, dilation 1 -> arm_depthwise_conv_3x3_s8 for a 3x3 filter with padding
 * <= 1, else arm_depthwise_conv_s8_opt; otherwise arm_depthwise_conv_s8.
 * ctx must hold arm_depthwise_conv_wrapper_s8_get_buffer_size() bytes.
 */
arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params *quant_params,
                                                  const cmsis_nn_dims *input_dims,
                                                  const int8_t *input_data,
                                                  const cmsis_nn_dims *filter_dims,
                                                  const int8_t *filter_data,
                                                  const cmsis_nn_dims *bias_dims,
                                                  const int32_t *bias_data,
                                                  const cmsis_nn_dims *output_dims,
                                                  int8_t *output_data);

/** Scratch bytes of arm_depthwise_conv_wrapper_s8 on this build's path (DSP or plain C). */
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims);
/** ... on the DSP path, whatever this build's path. */
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims);
/** ... on CMSIS-NN's MVE path, whatever this build's path. */
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_mve(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims);

/** Generic depthwise convolution: any ch_mult, dilation, batches. No scratch. */
arm_cmsis_nn_status arm_depthwise_conv_s8(const cmsis_nn_context *ctx,
                                          const cmsis_nn_dw_conv_params *dw_conv_params,
                                          const cmsis_nn_per_channel_quant_params *quant_params,
                                          const cmsis_nn_dims *input_dims,
                                          const int8_t *input_data,
                                          const cmsis_nn_dims *filter_dims,
                                          const int8_t *filter_data,
                                          const cmsis_nn_dims *bias_dims,
                                          const int32_t *bias_data,
                                          const cmsis_nn_dims *output_dims,
                                          int8_t *output_data);

/** 3x3 depthwise convolution, ch_mult 1, padding.w <= 1. No scratch. */
arm_cmsis_nn_status arm_depthwise_conv_3x3_s8(const cmsis_nn_context *ctx,
                                              const cmsis_nn_dw_conv_params *dw_conv_params,
                                              const cmsis_nn_per_channel_quant_params *quant_params,
                                              const cmsis_nn_dims *input_dims,
                                              const int8_t *input_data,
                                              const cmsis_nn_dims *filter_dims,
                                              const int8_t *filter_data,
                                              const cmsis_nn_dims *bias_dims,
                                              const int32_t *bias_data,
                                              const cmsis_nn_dims *output_dims,
                                              int8_t *output_data);

/** Depthwise convolution with ch_mult 1, any filter size. */
arm_cmsis_nn_status arm_depthwise_conv_s8_opt(const cmsis_nn_context *ctx,
                                              const cmsis_nn_dw_conv_params *dw_conv_params,
                                              const cmsis_nn_per_channel_quant_params *quant_params,
                                              const cmsis_nn_dims *input_dims,
                                              const int8_t *input_data,
                                              const cmsis_nn_dims *filter_dims,
                                              const int8_t *filter_data,
                                              const cmsis_nn_dims *bias_dims,
                                              const int32_t *bias_data,
                                              const cmsis_nn_dims *output_dims,
                                              int8_t *output_data);

/** DSP: C_in * KH * KW int16 (CMSIS-NN's im2col of one output pixel); plain C: 0. */
int32_t arm_depthwise_conv_s8_opt_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims);

/* ---------------------------------------------------------------------------------------------
 * Fully connected, pooling, elementwise
 * ------------------------------------------------------------------------------------------- */

/**
 * Fully connected over input_dims->n batches of filter_dims->n features, output_dims->c outputs:
 * acc = bias + sum((x + input_offset) * (w + filter_offset)), one multiplier and shift.
 */
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
                                           int8_t *output_data);

/** 0 on the DSP and plain paths; 4 * filter_dims->c on MVE (kernel sums). */
int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims);
int32_t arm_fully_connected_s8_get_buffer_size_dsp(const cmsis_nn_dims *filter_dims);
int32_t arm_fully_connected_s8_get_buffer_size_mve(const cmsis_nn_dims *filter_dims);

/**
 * Average pool of int8 codes over filter_dims->h x filter_dims->w windows: only cells inside
 * the input are summed and counted; the mean rounds half away from zero; no requantisation;
 * then the activation clamp. ARG_ERROR for no batch or a window entirely in the padding.
 */
arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx,
                                   const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims,
                                   const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int8_t *output_data);

/** DSP: 4 * ch_src (one int32 sum per channel); plain C and MVE: 0. */
int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src);
int32_t arm_avgpool_s8_get_buffer_size_dsp(const int dim_dst_width, const int ch_src);
int32_t arm_avgpool_s8_get_buffer_size_mve(const int dim_dst_width, const int ch_src);

/**
 * TFLite int8 ADD over block_size elements:
 * a = requantize((in1 + input_1_offset) << left_shift, input_1_mult, input_1_shift), b likewise,
 * out = clamp(requantize(a + b, out_mult, out_shift) + out_offset). TFLite uses left_shift 20;
 * this implementation is exact for any left_shift in [0, 31] on both paths. output may be
 * either input (in place).
 */
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
                                           const int32_t block_size);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNFUNCTIONS_H */
