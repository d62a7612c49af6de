/* tinyjax C runtime: what this build is. */
#include "tjx_kernels.h"
#include "tjx_nn_support.h"

int32_t tjx_runtime_uses_dsp(void)
{
    return TJX_DSP;
}
