/* tinyjax C runtime: tjx_copy_region_s8, a rectangle of one NHWC int8 tensor into another (the
 * copies around a patch of patch-based inference: its input region out of the image, its output
 * into the stage's output map). */
#include "tjx_kernels.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
                                       const int32_t ch)
{
    if (src == NULL || dst == NULL || h < 0 || w < 0 || ch < 0 || src_y < 0 || src_x < 0 || dst_y < 0 ||
        dst_x < 0 || src_x + w > src_w || dst_x + w > dst_w)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    const size_t row = (size_t)w * (size_t)ch;
    for (int32_t r = 0; r < h; r++)
    {
        const int8_t *s = src + ((size_t)(src_y + r) * (size_t)src_w + (size_t)src_x) * (size_t)ch;
        int8_t *d = dst + ((size_t)(dst_y + r) * (size_t)dst_w + (size_t)dst_x) * (size_t)ch;
        memmove(d, s, row);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
