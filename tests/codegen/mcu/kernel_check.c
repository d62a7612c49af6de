/*
 * Runs every kernel_case on the target and compares with the reference output, byte for byte:
 * the scratch the runtime asks (its *_get_buffer_size on this build's path) must be the op table's,
 * the kernel gets exactly that much, canary bytes around the output and the scratch must survive.
 * Prints one line per failure and a summary; returns the number of failed cases (the exit code).
 */
#include <stdio.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "kernel_check.h"
#include "tjx_kernels.h"

#define CANARY 64
#define CANARY_BYTE 0xA5
#define MAX_BYTES 65536

static int8_t out_area[CANARY + MAX_BYTES + CANARY] __attribute__((aligned(16)));
static int8_t scratch_area[CANARY + MAX_BYTES + CANARY] __attribute__((aligned(16)));

static int canaries_intact(const int8_t *area, int32_t size)
{
    for (int32_t i = 0; i < CANARY; i++)
    {
        if ((uint8_t)area[i] != CANARY_BYTE || (uint8_t)area[CANARY + size + i] != CANARY_BYTE)
        {
            return 0;
        }
    }
    return 1;
}

static int32_t buffer_size(const kernel_case *c)
{
    switch (c->kind)
    {
    case CASE_CONV: {
        const cmsis_nn_conv_params p = {c->input_offset, c->output_offset, c->stride, c->padding, {1, 1}, c->act};
        return arm_convolve_wrapper_s8_get_buffer_size(&p, &c->input_dims, &c->filter_dims, &c->output_dims);
    }
    case CASE_DW: {
        const cmsis_nn_dw_conv_params p = {c->input_offset, c->output_offset, c->ch_mult, c->stride,
                                           c->padding,      {1, 1},           c->act};
        return arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &c->input_dims, &c->filter_dims, &c->output_dims);
    }
    case CASE_DW_INPLACE:
        return tjx_depthwise_conv_inplace_s8_get_buffer_size(&c->output_dims);
    case CASE_FC:
        return arm_fully_connected_s8_get_buffer_size(&c->filter_dims);
    case CASE_AVGPOOL:
        return arm_avgpool_s8_get_buffer_size(c->output_dims.w, c->input_dims.c);
    default:
        return 0;
    }
}

static arm_cmsis_nn_status run(const kernel_case *c, int8_t *out, const cmsis_nn_context *ctx)
{
    const cmsis_nn_dims bias_dims = {1, 1, 1, c->output_dims.c};
    cmsis_nn_per_channel_quant_params quant = {(int32_t *)c->multiplier, (int32_t *)c->shift};
    switch (c->kind)
    {
    case CASE_CONV: {
        const cmsis_nn_conv_params p = {c->input_offset, c->output_offset, c->stride, c->padding, {1, 1}, c->act};
        return arm_convolve_wrapper_s8(ctx, &p, &quant, &c->input_dims, c->input, &c->filter_dims, c->filter,
                                       &bias_dims, c->bias, &c->output_dims, out);
    }
    case CASE_DW: {
        const cmsis_nn_dw_conv_params p = {c->input_offset, c->output_offset, c->ch_mult, c->stride,
                                           c->padding,      {1, 1},           c->act};
        return arm_depthwise_conv_wrapper_s8(ctx, &p, &quant, &c->input_dims, c->input, &c->filter_dims,
                                             c->filter, &bias_dims, c->bias, &c->output_dims, out);
    }
    case CASE_DW_INPLACE: {
        const cmsis_nn_dw_conv_params p = {c->input_offset, c->output_offset, 1, c->stride, c->padding, {1, 1},
                                           c->act};
        const int32_t in_size = c->input_dims.h * c->input_dims.w * c->input_dims.c;
        memcpy(out, c->input, (size_t)in_size);
        return tjx_depthwise_conv_inplace_s8(ctx, &p, &quant, &c->input_dims, &c->filter_dims, c->filter,
                                             &bias_dims, c->bias, &c->output_dims, out);
    }
    case CASE_FC: {
        const cmsis_nn_fc_params p = {c->input_offset, c->filter_offset, c->output_offset, c->act};
        const cmsis_nn_per_tensor_quant_params q = {c->out_mult, c->out_shift};
        return arm_fully_connected_s8(ctx, &p, &q, &c->input_dims, c->input, &c->filter_dims, c->filter,
                                      &bias_dims, c->bias, &c->output_dims, out);
    }
    case CASE_AVGPOOL: {
        const cmsis_nn_pool_params p = {c->stride, c->padding, c->act};
        return arm_avgpool_s8(ctx, &p, &c->input_dims, c->input, &c->filter_dims, &c->output_dims, out);
    }
    case CASE_ADD:
        return arm_elementwise_add_s8(c->input, c->input2, c->input_offset, c->in1_mult, c->in1_shift,
                                      c->input2_offset, c->in2_mult, c->in2_shift, c->left_shift, out,
                                      c->output_offset, c->out_mult, c->out_shift, c->act.min, c->act.max,
                                      c->expected_size);
    default:
        return ARM_CMSIS_NN_NO_IMPL_ERROR;
    }
}

int main(void)
{
    const int dsp = tjx_runtime_uses_dsp();
    int failed = 0;
    for (int32_t i = 0; i < kernel_case_count; i++)
    {
        const kernel_case *c = &kernel_cases[i];
        const int32_t want_scratch = dsp ? c->scratch_dsp : c->scratch_plain;
        const int32_t scratch = buffer_size(c);
        int32_t out_bytes = c->expected_size;
        if (c->kind == CASE_DW_INPLACE && c->input_dims.h * c->input_dims.w * c->input_dims.c > out_bytes)
        {
            out_bytes = c->input_dims.h * c->input_dims.w * c->input_dims.c;
        }
        if (scratch != want_scratch || out_bytes > MAX_BYTES || scratch > MAX_BYTES)
        {
            printf("case %ld (kind %d): scratch %ld, the op table says %ld\n", (long)i, (int)c->kind, (long)scratch,
                   (long)want_scratch);
            failed++;
            continue;
        }
        memset(out_area, CANARY_BYTE, sizeof(out_area));
        memset(scratch_area, CANARY_BYTE, sizeof(scratch_area));
        const cmsis_nn_context ctx = {scratch ? scratch_area + CANARY : NULL, scratch};
        int8_t *out = out_area + CANARY;
        const arm_cmsis_nn_status status = run(c, out, &ctx);
        int32_t first_bad = -1;
        for (int32_t j = 0; j < c->expected_size && first_bad < 0; j++)
        {
            if (out[j] != c->expected[j])
            {
                first_bad = j;
            }
        }
        const int intact = canaries_intact(out_area, out_bytes) && canaries_intact(scratch_area, scratch);
        if (status != ARM_CMSIS_NN_SUCCESS || first_bad >= 0 || !intact)
        {
            printf("case %ld (kind %d): status %d, first difference at %ld, canaries %s\n", (long)i, (int)c->kind,
                   (int)status, (long)first_bad, intact ? "intact" : "overwritten");
            failed++;
        }
    }
    printf("tjx-mcu %s: %ld of %ld cases passed\n", dsp ? "dsp" : "plain", (long)(kernel_case_count - failed),
           (long)kernel_case_count);
    return failed > 100 ? 100 : failed;
}
