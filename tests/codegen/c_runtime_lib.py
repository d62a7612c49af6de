"""Build tinyjax's C runtime into a host shared library and call it through ctypes with numpy arrays.

Used by ``test_c_kernels.py``. :func:`build` compiles every runtime source with the project's strict
flags into one ``.so``: plain C, or the DSP code path with portable intrinsics
(``-DTJX_DSP_EMULATION``), optionally with AddressSanitizer and UBSan. :class:`Runtime` wraps the
library; each method takes numpy arrays in tinyjax's layouts (NHWC int8 activations, OHWI conv
filters, ``[1, KH, KW, C·ch_mult]`` depthwise filters, ``[out, in]`` dense filters) and returns
``(status, output)``.

Every output and scratch buffer is a :class:`Guarded` array: canary bytes before and after it,
checked after each call, so a kernel writing outside what it was given fails the test even without
the sanitizers. Inputs are separate, exactly sized arrays, so the sanitizer build catches reads past
their ends.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tinyjax.codegen.emit import c_runtime

#: warnings the runtime must compile cleanly with (they are errors)
WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion", "-Wpedantic")
SANITIZERS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")
SUCCESS, ARG_ERROR = 0, -1
#: canary bytes on each side of an output or scratch buffer (a multiple of 16 keeps alignment)
CANARY = 64
CANARY_BYTE = 0xA5


def compiler() -> str | None:
    """The host C compiler (``$CC`` or gcc), or None when there is none."""
    return shutil.which(os.environ.get("CC", "gcc"))


def build(out_dir: Path, *, dsp_emulation: bool = False, sanitize: bool = False,
          cc: str | None = None) -> Path:
    """Compile the runtime into ``out_dir/libtjx_<variant>.so``; raises CalledProcessError with the
    compiler's messages on a warning or an error."""
    cc = cc or compiler()
    name = "libtjx_" + ("dsp" if dsp_emulation else "plain") + ("_san" if sanitize else "") + ".so"
    out = Path(out_dir) / name
    cmd = [cc, *WARNINGS, "-O1" if sanitize else "-O2", "-shared", "-fPIC",
           "-I", str(c_runtime.include_dir())]
    if dsp_emulation:
        cmd.append("-DTJX_DSP_EMULATION")
    if sanitize:
        cmd += SANITIZERS
    cmd += [str(s) for s in c_runtime.sources()] + ["-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


# --------------------------------------------------------------------------------------------
# CMSIS-NN v7 structs (arm_nn_types.h)
# --------------------------------------------------------------------------------------------

I32 = ctypes.c_int32


class Tile(ctypes.Structure):
    _fields_ = [("w", I32), ("h", I32)]


class Context(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("size", I32)]


class Dims(ctypes.Structure):
    _fields_ = [("n", I32), ("h", I32), ("w", I32), ("c", I32)]


class Activation(ctypes.Structure):
    _fields_ = [("min", I32), ("max", I32)]


class PerChannelQuant(ctypes.Structure):
    _fields_ = [("multiplier", ctypes.c_void_p), ("shift", ctypes.c_void_p)]


class PerTensorQuant(ctypes.Structure):
    _fields_ = [("multiplier", I32), ("shift", I32)]


class ConvParams(ctypes.Structure):
    _fields_ = [("input_offset", I32), ("output_offset", I32), ("stride", Tile), ("padding", Tile),
                ("dilation", Tile), ("activation", Activation)]


class DwConvParams(ctypes.Structure):
    _fields_ = [("input_offset", I32), ("output_offset", I32), ("ch_mult", I32), ("stride", Tile),
                ("padding", Tile), ("dilation", Tile), ("activation", Activation)]


class FcParams(ctypes.Structure):
    _fields_ = [("input_offset", I32), ("filter_offset", I32), ("output_offset", I32),
                ("activation", Activation)]


class PoolParams(ctypes.Structure):
    _fields_ = [("stride", Tile), ("padding", Tile), ("activation", Activation)]


def dims(shape) -> Dims:
    """``cmsis_nn_dims`` of a 4-d shape (or of ``(n, c)``: ``h = w = 1``)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (shape[0], 1, 1, shape[1])
    return Dims(*shape)


def tile(pair) -> Tile:
    """``cmsis_nn_tile`` of a ``(y, x)`` pair: CMSIS-NN's member order is ``w, h``."""
    y, x = pair
    return Tile(w=int(x), h=int(y))


def conv_params(stride=(1, 1), padding=(0, 0), dilation=(1, 1), input_offset=0, output_offset=0,
                act=(-128, 127)) -> ConvParams:
    return ConvParams(int(input_offset), int(output_offset), tile(stride), tile(padding), tile(dilation),
                      Activation(*act))


def dw_params(ch_mult=1, stride=(1, 1), padding=(0, 0), dilation=(1, 1), input_offset=0, output_offset=0,
              act=(-128, 127)) -> DwConvParams:
    return DwConvParams(int(input_offset), int(output_offset), int(ch_mult), tile(stride), tile(padding),
                        tile(dilation), Activation(*act))


class Guarded:
    """``nbytes`` bytes viewed as ``dtype``, with canary bytes on both sides (:meth:`check`)."""

    def __init__(self, nbytes: int, dtype=np.int8, fill: int | None = None, rng=None):
        self.raw = np.full(CANARY + nbytes + CANARY, CANARY_BYTE, dtype=np.uint8)
        inner = self.raw[CANARY:CANARY + nbytes]
        if fill is not None:
            inner[:] = fill
        elif rng is not None:
            inner[:] = rng.integers(0, 256, nbytes, dtype=np.uint8)
        self.array = inner.view(dtype)
        self.nbytes = nbytes

    @property
    def ptr(self) -> int:
        return self.raw.ctypes.data + CANARY

    def check(self) -> None:
        """Assert the canaries are intact (nothing written outside the buffer)."""
        before, after = self.raw[:CANARY], self.raw[CANARY + self.nbytes:]
        assert np.all(before == CANARY_BYTE), "a kernel wrote before its buffer"
        assert np.all(after == CANARY_BYTE), "a kernel wrote past its buffer"


def _c(a, dtype) -> np.ndarray:
    """A contiguous private copy (its own allocation: the sanitizers see its exact end)."""
    return np.array(a, dtype=dtype, copy=True, order="C")


def _ptr(a) -> int | None:
    return None if a is None else a.ctypes.data


# --------------------------------------------------------------------------------------------
# the library
# --------------------------------------------------------------------------------------------

_P = ctypes.c_void_p
_KERNEL11 = [_P] * 11
_SIGNATURES = {
    # name: (restype, argtypes); struct pointers and arrays are passed as addresses
    "arm_convolve_wrapper_s8": (ctypes.c_int, _KERNEL11),
    "arm_convolve_1x1_s8_fast": (ctypes.c_int, _KERNEL11),
    "arm_convolve_1x1_s8": (ctypes.c_int, _KERNEL11),
    "arm_convolve_1_x_n_s8": (ctypes.c_int, _KERNEL11),
    "arm_convolve_s8": (ctypes.c_int, [_P] * 12),
    "arm_depthwise_conv_wrapper_s8": (ctypes.c_int, _KERNEL11),
    "arm_depthwise_conv_3x3_s8": (ctypes.c_int, _KERNEL11),
    "arm_depthwise_conv_s8_opt": (ctypes.c_int, _KERNEL11),
    "arm_depthwise_conv_s8": (ctypes.c_int, _KERNEL11),
    "arm_fully_connected_s8": (ctypes.c_int, _KERNEL11),
    "arm_avgpool_s8": (ctypes.c_int, [_P] * 7),
    "arm_elementwise_add_s8": (ctypes.c_int, [_P, _P] + [I32] * 7 + [_P] + [I32] * 6),
    "tjx_depthwise_conv_inplace_s8": (ctypes.c_int, [_P] * 10),
    "tjx_lut_s8": (ctypes.c_int, [_P, _P, _P, I32]),
    "tjx_channel_mul_s8": (ctypes.c_int, [_P, _P, I32, I32, _P, I32, I32, I32, I32, I32, _P]),
    "tjx_pad_s8": (ctypes.c_int, [_P, _P, _P, _P, I32, _P, _P]),
    "tjx_convolve_wrapper_s8_select": (ctypes.c_int, [_P] * 3),
    "tjx_depthwise_conv_wrapper_s8_select": (ctypes.c_int, [_P] * 3),
    "tjx_runtime_uses_dsp": (I32, []),
    "arm_convolve_wrapper_s8_get_buffer_size": (I32, [_P] * 4),
    "arm_convolve_wrapper_s8_get_buffer_size_dsp": (I32, [_P] * 4),
    "arm_convolve_wrapper_s8_get_buffer_size_mve": (I32, [_P] * 4),
    "arm_convolve_s8_get_buffer_size": (I32, [_P] * 2),
    "arm_convolve_1x1_s8_fast_get_buffer_size": (I32, [_P]),
    "arm_convolve_1_x_n_s8_get_buffer_size": (I32, [_P] * 4),
    "arm_depthwise_conv_wrapper_s8_get_buffer_size": (I32, [_P] * 4),
    "arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp": (I32, [_P] * 4),
    "arm_depthwise_conv_wrapper_s8_get_buffer_size_mve": (I32, [_P] * 4),
    "arm_depthwise_conv_s8_opt_get_buffer_size": (I32, [_P] * 2),
    "arm_fully_connected_s8_get_buffer_size": (I32, [_P]),
    "arm_fully_connected_s8_get_buffer_size_dsp": (I32, [_P]),
    "arm_fully_connected_s8_get_buffer_size_mve": (I32, [_P]),
    "arm_avgpool_s8_get_buffer_size": (I32, [ctypes.c_int, ctypes.c_int]),
    "arm_avgpool_s8_get_buffer_size_dsp": (I32, [ctypes.c_int, ctypes.c_int]),
    "arm_avgpool_s8_get_buffer_size_mve": (I32, [ctypes.c_int, ctypes.c_int]),
    "tjx_depthwise_conv_inplace_s8_get_buffer_size": (I32, [_P]),
}
CONV_KERNELS = ("arm_convolve_1x1_s8_fast", "arm_convolve_1x1_s8", "arm_convolve_1_x_n_s8", "arm_convolve_s8")
DW_KERNELS = ("arm_depthwise_conv_3x3_s8", "arm_depthwise_conv_s8_opt", "arm_depthwise_conv_s8")


def _a(struct):
    """A struct by reference (the reference keeps a temporary struct alive for the call)."""
    return ctypes.byref(struct)


class Runtime:
    """The runtime library at ``path``. ``path_name``: the code path it was built for."""

    def __init__(self, path: Path, path_name: str):
        self.lib = ctypes.CDLL(str(path))
        self.path_name = path_name
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self.lib, name)
            fn.restype, fn.argtypes = restype, argtypes

    def size(self, name: str, *args) -> int:
        """A ``*_get_buffer_size`` function; structs are passed by address."""
        conv = [_a(a) if isinstance(a, ctypes.Structure) else a for a in args]
        return int(getattr(self.lib, name)(*conv))

    # -- convolutions ---------------------------------------------------------------------
    def _weighted(self, fn: str, params, quant, x, w_dims: Dims, w, bias, out_shape,
                  scratch: int | None, rng, upscale: Dims | None = None, in_shape=None):
        x = _c(x, np.int8)
        w = _c(w, np.int8)
        bias = None if bias is None else _c(bias, np.int32)
        out = Guarded(int(np.prod(out_shape)), np.int8, rng=rng)
        scratch_buf = Guarded(scratch, np.uint8, rng=rng) if scratch else None
        ctx = Context(None if scratch_buf is None else scratch_buf.ptr, scratch or 0)
        in_d, out_d = dims(x.shape if in_shape is None else in_shape), dims(out_shape)
        bias_d = Dims(1, 1, 1, int(out_shape[-1]))
        args = [_a(ctx), _a(params), _a(quant), _a(in_d), _ptr(x), _a(w_dims), _ptr(w), _a(bias_d),
                _ptr(bias)]
        if fn == "arm_convolve_s8":
            args.append(None if upscale is None else _a(upscale))
        args += [_a(out_d), out.ptr]
        status = getattr(self.lib, fn)(*args)
        out.check()
        if scratch_buf is not None:
            scratch_buf.check()
        return status, out.array.reshape(out_shape).copy()

    def conv(self, fn, x, w, bias, input_offset, output_offset, mult, shift, stride, padding,
             dilation=(1, 1), act=(-128, 127), out_shape=None, scratch=None, rng=None, upscale=None,
             in_shape=None):
        """``fn`` (the wrapper or one kernel) on NHWC ``x`` and OHWI ``w``; ``scratch`` bytes of
        context (default: the wrapper's ``get_buffer_size`` on this build). ``upscale`` ``(y, x)``
        and ``in_shape`` (the upscaled input's shape) only for ``arm_convolve_s8``."""
        params = conv_params(stride, padding, dilation, input_offset, output_offset, act)
        mult, shift = _c(mult, np.int32), _c(shift, np.int32)
        quant = PerChannelQuant(_ptr(mult), _ptr(shift))
        w_dims = dims(w.shape)
        if scratch is None:
            scratch = self.size("arm_convolve_wrapper_s8_get_buffer_size", params, dims(x.shape), w_dims,
                                dims(out_shape))
        return self._weighted(fn, params, quant, x, w_dims, w, bias, out_shape, scratch, rng,
                              upscale=None if upscale is None else Dims(1, upscale[0], upscale[1], 1),
                              in_shape=in_shape)

    def conv_select(self, x_shape, w_shape, stride, padding, dilation=(1, 1)) -> str:
        params = conv_params(stride, padding, dilation)
        i = self.lib.tjx_convolve_wrapper_s8_select(_a(params), _a(dims(x_shape)), _a(dims(w_shape)))
        return CONV_KERNELS[i]

    def depthwise(self, fn, x, w, bias, input_offset, output_offset, mult, shift, ch_mult, stride,
                  padding, dilation=(1, 1), act=(-128, 127), out_shape=None, scratch=None, rng=None):
        params = dw_params(ch_mult, stride, padding, dilation, input_offset, output_offset, act)
        mult, shift = _c(mult, np.int32), _c(shift, np.int32)
        quant = PerChannelQuant(_ptr(mult), _ptr(shift))
        w_dims = dims(w.shape)
        if scratch is None:
            scratch = self.size("arm_depthwise_conv_wrapper_s8_get_buffer_size", params, dims(x.shape),
                                w_dims, dims(out_shape))
        return self._weighted(fn, params, quant, x, w_dims, w, bias, out_shape, scratch, rng)

    def dw_select(self, x_shape, w_shape, ch_mult, stride, padding, dilation=(1, 1)) -> str:
        params = dw_params(ch_mult, stride, padding, dilation)
        i = self.lib.tjx_depthwise_conv_wrapper_s8_select(_a(params), _a(dims(x_shape)), _a(dims(w_shape)))
        return DW_KERNELS[i]

    def depthwise_inplace(self, x, w, bias, input_offset, output_offset, mult, shift, stride, padding,
                          dilation=(1, 1), act=(-128, 127), out_shape=None, scratch=None, rng=None):
        """Returns ``(status, output, data, temporary)``: the data buffer (max(in, out) bytes, the
        output in its first bytes) and the temporary, both :class:`Guarded` and already checked."""
        params = dw_params(1, stride, padding, dilation, input_offset, output_offset, act)
        mult, shift = _c(mult, np.int32), _c(shift, np.int32)
        quant = PerChannelQuant(_ptr(mult), _ptr(shift))
        w = _c(w, np.int8)
        bias = None if bias is None else _c(bias, np.int32)
        out_d = dims(out_shape)
        if scratch is None:
            scratch = self.size("tjx_depthwise_conv_inplace_s8_get_buffer_size", out_d)
        data = Guarded(max(x.size, int(np.prod(out_shape))), np.int8, rng=rng)
        data.array[:x.size] = x.reshape(-1)
        tmp = Guarded(scratch, np.int8, rng=rng)
        ctx = Context(tmp.ptr, scratch)
        bias_d = Dims(1, 1, 1, int(out_shape[-1]))
        status = self.lib.tjx_depthwise_conv_inplace_s8(
            _a(ctx), _a(params), _a(quant), _a(dims(x.shape)), _a(dims(w.shape)), _ptr(w), _a(bias_d),
            _ptr(bias), _a(out_d), data.ptr)
        data.check()
        tmp.check()
        out = data.array[:int(np.prod(out_shape))].reshape(out_shape).copy()
        return status, out, data, tmp

    # -- the rest -------------------------------------------------------------------------
    def fully_connected(self, x, w, bias, input_offset, filter_offset, output_offset, mult, shift,
                        act=(-128, 127), rng=None):
        """``x`` ``[N, in]``, ``w`` ``[out, in]``."""
        params = FcParams(int(input_offset), int(filter_offset), int(output_offset), Activation(*act))
        quant = PerTensorQuant(int(mult), int(shift))
        n_out, n_in = w.shape
        w_dims = Dims(n_in, 1, 1, n_out)
        scratch = self.size("arm_fully_connected_s8_get_buffer_size", w_dims)
        return self._weighted("arm_fully_connected_s8", params, quant, x, w_dims, w, bias,
                              (x.shape[0], n_out), scratch, rng)

    def avgpool(self, x, kernel, stride, padding, act=(-128, 127), out_shape=None, scratch=None,
                rng=None):
        params = PoolParams(tile(stride), tile(padding), Activation(*act))
        x = _c(x, np.int8)
        if scratch is None:
            scratch = self.size("arm_avgpool_s8_get_buffer_size", int(out_shape[2]), int(out_shape[3]))
        out = Guarded(int(np.prod(out_shape)), np.int8, rng=rng)
        scratch_buf = Guarded(scratch, np.uint8, rng=rng) if scratch else None
        ctx = Context(None if scratch_buf is None else scratch_buf.ptr, scratch)
        k_dims = Dims(1, int(kernel[0]), int(kernel[1]), 1)
        status = self.lib.arm_avgpool_s8(_a(ctx), _a(params), _a(dims(x.shape)), _ptr(x), _a(k_dims),
                                         _a(dims(out_shape)), out.ptr)
        out.check()
        if scratch_buf is not None:
            scratch_buf.check()
        return status, out.array.reshape(out_shape).copy()

    def add(self, a, b, p, act=(-128, 127), in_place: int | None = None, rng=None):
        """``arm_elementwise_add_s8`` with ``p`` an ``pointwise.AddParams``; ``in_place`` 0 or 1 writes
        over that input."""
        a, b = _c(a, np.int8), _c(b, np.int8)
        out = Guarded(a.size, np.int8, rng=rng)
        if in_place is not None:
            out.array[:] = (a, b)[in_place].reshape(-1)
        src = [a.ctypes.data, b.ctypes.data]
        if in_place is not None:
            src[in_place] = out.ptr
        status = self.lib.arm_elementwise_add_s8(
            src[0], src[1], p.in1_offset, p.in1_mult, p.in1_shift, p.in2_offset, p.in2_mult, p.in2_shift,
            p.left_shift, out.ptr, p.out_offset, p.out_mult, p.out_shift, act[0], act[1], a.size)
        out.check()
        return status, out.array.reshape(a.shape).copy()

    def lut(self, x, table, in_place=False, rng=None):
        x, table = _c(x, np.int8), _c(table, np.int8)
        out = Guarded(x.size, np.int8, rng=rng)
        if in_place:
            out.array[:] = x.reshape(-1)
        status = self.lib.tjx_lut_s8(out.ptr if in_place else x.ctypes.data, table.ctypes.data, out.ptr,
                                     x.size)
        out.check()
        return status, out.array.reshape(x.shape).copy()

    def channel_mul(self, x, gate, p, act=(-128, 127), in_place=False, rng=None):
        """``x`` ``[N, H, W, C]`` times ``gate`` ``[N, 1, 1, C]``; ``p`` an ``pointwise.MulParams``."""
        x, gate = _c(x, np.int8), _c(gate, np.int8)
        out = Guarded(x.size, np.int8, rng=rng)
        if in_place:
            out.array[:] = x.reshape(-1)
        d = dims(x.shape)
        status = self.lib.tjx_channel_mul_s8(out.ptr if in_place else x.ctypes.data, gate.ctypes.data,
                                             p.in1_offset, p.in2_offset, out.ptr, p.out_offset,
                                             p.out_mult, p.out_shift, act[0], act[1], _a(d))
        out.check()
        return status, out.array.reshape(x.shape).copy()

    def pad(self, x, padding, value, out_shape=None, rng=None):
        """``padding`` ``((top, bottom), (left, right))``."""
        x = _c(x, np.int8)
        (t, b), (lt, r) = padding
        if out_shape is None:
            n, h, w, c = x.shape
            out_shape = (n, h + t + b, w + lt + r, c)
        out = Guarded(int(np.prod(out_shape)), np.int8, rng=rng)
        before, after = Tile(w=lt, h=t), Tile(w=r, h=b)
        status = self.lib.tjx_pad_s8(_a(dims(x.shape)), _ptr(x), _a(before), _a(after), int(value),
                                     _a(dims(out_shape)), out.ptr)
        out.check()
        return status, out.array.reshape(out_shape).copy()
