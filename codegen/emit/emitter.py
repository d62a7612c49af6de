"""C code generation: a quantised graph and its memory plan as C sources a firmware project includes.

``emit(qmodel, plan, prefix)`` returns the files of an export as strings (relative path -> text),
writing nothing (``python -m tinyjax.export`` writes them):

=========================  ==================================================================
``<prefix>_model.h``       the API: ``<PREFIX>_ARENA_BYTES``, input/output shapes, scales and zero
                           points, their arena slots, ``int <prefix>_invoke(input, output, arena)``
``<prefix>_model.c``       the straight-line kernel calls at the plan's arena offsets, every
                           status checked and returned; only ``static const`` objects
``<prefix>_weights.c``     the constant arrays (weights, biases, multipliers, shifts, tables), in
                           flash
``<prefix>_check.c``       a test program: runs every image of ``input.bin`` and compares with
                           ``expected.bin`` (host, sanitizers, QEMU)
``<prefix>_firmware.c``    the smallest Cortex-M image that runs the network (for ``make size``)
``Makefile``               host, sanitizer and arm-none-eabi builds, QEMU runs, ``CMSIS_NN=``
``tinyjax_runtime/...``    the kernels (CMSIS-NN v7 API and tinyjax's own), start-up code and
                           linker script for QEMU's MPS2 boards
=========================  ==================================================================

Each op's call comes from its record in the op table (``OpKind.c_call``) through a
:class:`CallWriter`; the text around it from the templates in ``templates/`` (``@name@``
placeholders). Reentrant by construction: the model file has no mutable object, the arena is the
caller's, so two models with different prefixes (or two arenas of one model) coexist in a binary.

The arena is the plan's: tensor ``t`` lives at ``plan.tensor_offsets[t]``, op ``o``'s scratch at
``plan.scratch_offsets[o]`` with the size its kernel choice says; the input image has a slot of
its own (``<PREFIX>_INPUT_OFFSET``) and the logits are read from theirs. A plan for a DSP target
(Cortex-M4/M7) also runs on the host: the plain-C kernels need no more scratch than the DSP ones.

A plan made with ``input_mode="caller"`` keeps the image out of the arena: ``<prefix>_invoke``
reads it through its input pointer (the first ops, or a patch loop's input copies) and never
writes it, the header has no input slot and says what the caller must keep alive; a patch plan
also gets ``<prefix>_invoke_rows(read_rows, ctx, output, arena)``, whose input copies ask a
callback for each patch's region instead (``templates/input_caller.in``, ``invoke_rows.in``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tinyjax import __version__
from tinyjax.codegen.emit import c_runtime
from tinyjax.codegen.ops import OPS
from tinyjax.codegen.plan.protocol import Plan
from tinyjax.codegen.quant.quantize import QuantizedModel
from tinyjax.codegen.targets import flash_bytes, get_target
from tinyjax.errors import GraphError

__all__ = ["TEMPLATES_DIR", "CallWriter", "c_identifier", "emit", "render", "tjx_functions"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
#: values per line of a constant array in ``<prefix>_weights.c``
VALUES_PER_LINE = 24
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline "
    "int long register restrict return short signed sizeof static struct switch typedef union "
    "unsigned void volatile while".split())


def c_identifier(prefix: str) -> str:
    """``prefix`` if it can start C identifiers (letters, digits, ``_``, not a digit first, not a
    keyword); :class:`GraphError` otherwise."""
    if not isinstance(prefix, str) or not _IDENTIFIER.match(prefix) or prefix in _C_KEYWORDS:
        raise GraphError(f"prefix {prefix!r} is not a C identifier; use letters, digits and '_', "
                         "not starting with a digit (e.g. 'model' or 'person_det')")
    return prefix


def render(template: str, values: Mapping[str, object]) -> str:
    """``templates/<template>`` with every ``@name@`` replaced by ``values[name]``; an unknown
    placeholder is an error (a template and its caller never drift apart silently)."""
    text = (TEMPLATES_DIR / template).read_text()

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            raise KeyError(f"template {template}: no value for @{key}@")
        return str(values[key])

    return re.sub(r"@([A-Za-z_]+)@", sub, text)


def render_sections(template: str, values: Mapping[str, object]) -> dict[str, str]:
    """:func:`render` of a template made of sections, each opened by a line ``@@@ name``: name ->
    its rendered text, without the newline that ends its last line."""
    parts = re.split(r"^@@@ (\w+)\n", render(template, values), flags=re.M)
    return {name: body.removesuffix("\n") for name, body in zip(parts[1::2], parts[2::2])}


def _c_array_body(values: np.ndarray) -> str:
    flat = np.asarray(values).reshape(-1).tolist()
    lines = [", ".join(map(str, flat[i:i + VALUES_PER_LINE])) for i in range(0, len(flat), VALUES_PER_LINE)]
    return "    " + ",\n    ".join(lines)


def _float(v: float) -> str:
    return f"{float(np.float32(v)):.9g}"


class CallWriter:
    """Collects what the op records' ``c_call`` ask for: the static objects of the model file, the
    constant arrays of the weights file, and pointers into the arena. One per export; ``begin``
    sets the op being written."""

    def __init__(self, plan: Plan, prefix: str):
        self.plan = plan
        self.prefix = prefix
        self.graph = plan.graph
        self.kernels = plan.kernels
        self.statics: list[str] = []
        self.externs: list[str] = []
        self.arrays: list[str] = []
        self.array_bytes = 0
        self._objects: dict[tuple[str, str], str] = {}
        self._op = None
        self._index = -1
        self.in_place = False
        # patch mode (a stage op's call in one patch): values that differ between patches
        self._patch = None               # (schedule, i, j) while writing a patch's calls
        self._rows: dict[str, tuple[int, int]] = {}   # tensor -> (start, pitch) of a row loop
        self._tag = ""
        self._req = 0
        self._tables: dict[str, tuple[str, list[str]]] = {}
        self._arrays_done: set[tuple[int, str]] = set()   # weights already written (stage ops)

    def begin(self, index: int, op, tag: str = "") -> None:
        self._op, self._index = op, index
        self.setup: list[str] = []       # statements before this op's call
        self.in_place = self.kernels[op.name].in_place if op is not None else False
        self._tag, self._req, self._rows = tag or f"op{index}", 0, {}

    # -- patch mode -----------------------------------------------------------------------------
    def begin_patch(self, schedule, i: int, j: int) -> None:
        self._patch = (schedule, i, j)

    def end_patches(self) -> None:
        self._patch = None

    def _per_patch(self, ctype: str, text: str) -> str:
        """A value of the current patch; returns a placeholder that :meth:`resolve` turns into a
        constant (equal in every patch) or an entry of a table indexed by the patch."""
        key = f"{self._tag}_{self._req}"
        self._req += 1
        self._tables.setdefault(key, (ctype, []))[1].append(text)
        return f"@@{key}@@"

    def value(self, v: int) -> str:
        """An int32 that may differ between patches (a plain literal outside patch mode)."""
        return str(int(v)) if self._patch is None else self._per_patch("int32_t", str(int(v)))

    def row_loop(self, rows: Mapping[str, tuple[int, int]]) -> None:
        """Make :meth:`ptr` of these tensors ``start + r·pitch`` elements (a loop over rows ``r``)."""
        self._rows = dict(rows)

    def resolve(self, text: str, index: str = "t") -> str:
        """Replace the placeholders of ``text``; tables become ``static const`` arrays."""
        def sub(m: re.Match) -> str:
            key = m.group(1)
            ctype, values = self._tables[key]
            if len(set(values)) == 1:
                if ctype == "int32_t":
                    return values[0]
                return self.static(ctype, values[0], raw=True)[1:]
            name = f"p_{key}"
            if name not in self._objects.values():
                self._objects[(ctype, name)] = name
                body = ",\n    ".join(values)
                self.statics.append(f"static const {ctype} {name}[{len(values)}] = {{\n    {body}}};")
            return f"{name}[{index}]"
        return re.sub(r"@@([A-Za-z0-9_]+)@@", sub, text)

    # -- arena ----------------------------------------------------------------------------------
    def ptr(self, tensor: str) -> str:
        """The tensor's address in the arena (``int8_t *``): in patch mode its region buffer's
        (plus the row of a row loop); the caller's image (and a view of it), ``input``."""
        if self._patch is None:
            if tensor not in self.plan.tensor_offsets and self.plan.input_mode == "caller":
                return "input"
            return f"(arena + {self.plan.tensor_offsets[tensor]})"
        base = self.plan.region_offsets[tensor]
        if tensor in self._rows:
            start, pitch = self._rows[tensor]
            return f"(arena + {base} + {self.value(start)} + r * {self.value(pitch)})"
        return f"(arena + {base})"

    def shape_of(self, tensor: str) -> tuple[int, ...]:
        """The tensor's shape, or in patch mode its region's in the current patch."""
        if self._patch is None:
            return self.graph.tensor(tensor).shape
        sch, i, j = self._patch
        return sch.region_shape(tensor, i, j)

    def size_of(self, tensor: str) -> str:
        """Elements of the tensor (of a row of the output, in a row loop)."""
        if self._rows:                       # a row loop: one row of the output
            out = self.shape_of(self._op.output)
            return self.value(out[2] * out[3])
        n = 1
        for d in self.shape_of(tensor):
            n *= d
        return self.value(n)

    def context(self) -> str:
        """The address of the op's ``cmsis_nn_context``: its scratch in the arena, or none."""
        k = self.kernels[self._op.name]
        if not k.scratch_bytes:
            if "no_scratch" not in self._objects.values():
                self._objects[("cmsis_nn_context", "none")] = "no_scratch"
                self.statics.insert(0, "static const cmsis_nn_context no_scratch = {NULL, 0};")
            return "&no_scratch"
        off = self.plan.scratch_offsets[self._op.name]   # a stage op: its largest patch's
        # one context for the whole sequence, set before each call that has scratch: a stack slot
        # per call (compound literals) would grow the invoke's frame with the network's depth
        self.setup.append(f"ctx.buf = arena + {off};\n    ctx.size = {k.scratch_bytes};")
        return "&ctx"

    # -- static objects -------------------------------------------------------------------------
    def static(self, ctype: str, members: Mapping[str, object] | str, raw: bool = False) -> str:
        """The address of a ``static const`` object of the model file with these members (equal
        objects are written once); in patch mode, of the current patch's object."""
        init = members if raw else "{" + ", ".join(f".{k} = {v}" for k, v in members.items()) + "}"
        if self._patch is not None and not raw:
            return "&" + self._per_patch(ctype, init)
        key = (ctype, init)
        name = self._objects.get(key)
        if name is None:
            name = f"k{len(self._objects)}"
            self._objects[key] = name
            self.statics.append(f"static const {ctype} {name} = {init};")
        return "&" + name

    def tile(self, pair) -> str:
        """A ``cmsis_nn_tile`` initializer of a ``(y, x)`` pair (CMSIS-NN orders it ``w, h``)."""
        y, x = (int(v) for v in pair)
        return f"{{.w = {x}, .h = {y}}}"

    def dims(self, shape: Sequence[int]) -> str:
        """The address of a ``cmsis_nn_dims`` of a 4-d shape, or of ``(n, c)`` as ``(n, 1, 1, c)``."""
        s = tuple(int(v) for v in shape)
        if len(s) == 2:
            s = (s[0], 1, 1, s[1])
        if len(s) != 4:
            raise GraphError(f"op {self._op.name}: no cmsis_nn_dims for shape {s}")
        return self.static("cmsis_nn_dims", dict(zip("nhwc", s)))

    def dims_of(self, tensor: str) -> str:
        return self.dims(self.shape_of(tensor))

    def array(self, field: str, values, ctype: str) -> str:
        """The name of a constant array in flash holding ``values`` (flattened)."""
        a = np.asarray(values)
        name = f"{self.prefix}_op{self._index}_{field}"
        if (self._index, field) in self._arrays_done:      # a stage op, in a later patch
            return name
        self._arrays_done.add((self._index, field))
        self.externs.append(f"extern const {ctype} {name}[{a.size}];")
        self.arrays.append(f"/* {self._op.name}: {field} {tuple(a.shape)} */\n"
                           f"{self.prefix.upper()}_CONST {ctype} {name}[{a.size}] = {{\n"
                           f"{_c_array_body(a)}\n}};\n")
        self.array_bytes += a.size * a.dtype.itemsize
        return name


def _describe(op, graph, kernel) -> str:
    """One comment line: op name, kind, shapes, kernel, placement."""
    shape = "x".join(map(str, graph.tensor(op.output).shape[1:]))
    fn = kernel.function or "view"
    where = ", in place" if kernel.in_place else ""
    scratch = f", scratch {kernel.scratch_bytes} B" if kernel.scratch_bytes else ""
    return f"{op.name}: {op.kind} -> {shape} ({fn}{where}{scratch})"


_CHECK = "\n    if (status != ARM_CMSIS_NN_SUCCESS)\n    {\n        return status;\n    }"


def _checked(call: str, setup: Sequence[str] = ()) -> str:
    pre = "".join(f"\n    {line}" for line in setup)
    return f"{pre}\n    status = {call};{_CHECK}"


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line.strip() else line for line in text.split("\n"))


def _patch_loop(qmodel: QuantizedModel, plan, writer: CallWriter) -> str:
    """The patch stage as one loop over the patches: copy the patch's input region out of the
    image, the stage's kernel calls on region buffers (per-patch dims and padding from tables
    indexed by the patch), copy the result into the stage's output map."""
    sch, graph = plan.schedule, qmodel.graph
    x_in, y = graph.inputs[0], sch.output
    _, _, in_w, in_c = graph.tensor(x_in).shape
    _, _, y_w, y_c = graph.tensor(y).shape
    row_ops = {k for k, op in enumerate(sch.stage_ops) if OPS[op.kind].patch == "pointwise" and any(
        sch.region(x, i, j) != sch.region(op.output, i, j) for x in op.inputs for i, j in sch.patches())}
    first, kernels = None, writer.kernels
    for i, j in sch.patches():
        writer.begin_patch(sch, i, j)
        parts = []
        writer.begin(-1, None, tag="in")
        y0, y1, x0, x1 = sch.region(x_in, i, j)
        v = writer.value
        region = f"(arena + {plan.region_offsets[x_in]})"
        if plan.input_mode == "arena":
            copy = (f"tjx_copy_region_s8((arena + {plan.tensor_offsets[x_in]}), {in_w}, {v(y0)}, {v(x0)}, "
                    f"{region}, {v(x1 - x0)}, 0, 0, {v(y1 - y0)}, {v(x1 - x0)}, {in_c})")
        else:   # the caller's image: through the input pointer, or asked of read_rows
            row, col, rows, cols = v(y0), v(x0), v(y1 - y0), v(x1 - x0)
            copy = (f"(input != NULL)\n        ? tjx_copy_region_s8(input, {in_w}, {row}, {col}, {region}, "
                    f"{cols}, 0, 0, {rows}, {cols}, {in_c})\n"
                    f"        : (read_rows(read_ctx, {row}, {col}, {rows}, {cols}, {region}) == 0 "
                    "? ARM_CMSIS_NN_SUCCESS : ARM_CMSIS_NN_FAILURE)")
        parts.append(("    /* the patch's input region, out of the image */", _checked(copy)))
        for k, op in enumerate(sch.stage_ops):
            writer.begin(k, op)
            comment = f"    /* {k}: {_describe(op, graph, kernels[op.name])} */"
            if k not in row_ops:
                call = OPS[op.kind].c_call(sch.patch_op(op, i, j), qmodel.params[op.name], writer)
                parts.append((comment, _checked(call, writer.setup)))
                continue
            oy0, oy1, ox0, ox1 = sch.region(op.output, i, j)
            rows = {}
            for x in op.inputs:
                ty0, _, tx0, tx1 = sch.region(x, i, j)
                c = graph.tensor(x).shape[3]
                rows[x] = (((oy0 - ty0) * (tx1 - tx0) + (ox0 - tx0)) * c, (tx1 - tx0) * c)
            rows[op.output] = (0, (ox1 - ox0) * graph.tensor(op.output).shape[3])
            n_rows = v(oy1 - oy0)
            writer.row_loop(rows)
            call = OPS[op.kind].c_call(op, qmodel.params[op.name], writer)
            body = _indent(_checked(call, writer.setup))
            parts.append((comment + " /* row by row: an input's region is wider */",
                          f"\n    for (int32_t r = 0; r < {n_rows}; ++r)\n    {{{body}\n    }}"))
        writer.begin(-1, None, tag="out")
        y0, y1, x0, x1 = sch.region(y, i, j)
        parts.append(("    /* the patch's output region, into the stage output */",
                      _checked(f"tjx_copy_region_s8((arena + {plan.region_offsets[y]}), {v(x1 - x0)}, 0, 0, "
                               f"(arena + {plan.tensor_offsets[y]}), {y_w}, {v(y0)}, {v(x0)}, "
                               f"{v(y1 - y0)}, {v(x1 - x0)}, {y_c})")))
        code = [c for _, c in parts]
        if first is None:
            first = parts
        elif code != [c for _, c in first]:      # every patch makes the same calls
            raise GraphError("patch calls differ between patches (an emitter bug)")
    writer.end_patches()
    body = "".join(f"\n{cm}{c}" for cm, c in first)
    n = sch.p * sch.p
    return (f"    /* patch stage: ops 0..{sch.n - 1} in {sch.p}x{sch.p} patches, row-major; the regions "
            f"are the patch's receptive fields */\n"
            f"    for (int32_t t = 0; t < {n}; ++t)\n    {{{_indent(writer.resolve(body))}\n    }}")


def emit(qmodel: QuantizedModel, plan: Plan, prefix: str = "model", note: str = "",
         model_name: str = "") -> dict[str, str]:
    """The export's files (relative path -> text): see the module docstring.

    Args:
        qmodel: the quantised model (:func:`tinyjax.codegen.quant.quantize.quantize`).
        plan: its memory plan (:func:`tinyjax.codegen.plan.graph_plan.plan_graph` of ``qmodel.graph``), or
            a patch plan (:func:`tinyjax.codegen.plan.patch.plan_patches`): the stage then runs as
            one loop over the patches.
        prefix: the C prefix of every external name (``<prefix>_invoke``, ``<PREFIX>_ARENA_BYTES``).
        note: a line for the header's comment (e.g. "random weights, for profiling only").
        model_name: the network's name for comments (default: the prefix).
    """
    prefix = c_identifier(prefix)
    graph = qmodel.graph
    if plan.graph.ops != graph.ops or plan.graph.inputs != graph.inputs:
        raise GraphError("the memory plan is not the plan of this model's graph; plan "
                         "qmodel.graph with tinyjax.codegen.plan.graph_plan.plan_graph")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise GraphError("export needs a graph with one input and one output")
    target = get_target(plan.target)
    writer = CallWriter(plan, prefix)
    ops = {op.name: (i, op) for i, op in enumerate(graph.ops)}
    calls = []
    order = plan.order
    schedule = plan.schedule
    if schedule is not None:
        calls.append(_patch_loop(qmodel, plan, writer))
        order = order[schedule.n:]
    for name in order:
        i, op = ops[name]
        writer.begin(i, op)
        call = OPS[op.kind].c_call(op, qmodel.params[op.name], writer)
        comment = f"    /* {i}: {_describe(op, graph, writer.kernels[op.name])} */"
        if call is None:
            calls.append(comment)
            continue
        calls.append(comment + _checked(call, writer.setup))
    tjx = tjx_functions(plan)
    kernels = ("CMSIS-NN's API alone (the cmsis-nn kernel set)" if plan.kernel_set == "cmsis-nn"
               else "CMSIS-NN's API" + (f" and tinyjax's {', '.join(tjx)}" if tjx else ""))
    x, y = graph.tensor(graph.inputs[0]), graph.tensor(graph.outputs[0])
    q_in, q_out = qmodel.quant(x.name), qmodel.quant(y.name)
    _, in_h, in_w, in_c = x.shape
    n_flash = flash_bytes(graph)
    guard = ""
    if target.path == "plain":
        guard = ("\n#if defined(__ARM_FEATURE_DSP) && !defined(TJX_ALLOW_PLAIN_PLAN)\n"
                 "#error \"planned for plain-C kernels (target host): the DSP kernels need more scratch; "
                 "export with --target cortex-m4 or cortex-m7\"\n#endif\n")
    values = {
        "prefix": prefix, "PREFIX": prefix.upper(), "model": model_name or prefix,
        "version": __version__, "target": target.name, "path": target.path,
        "note": "".join(f" * {line}\n" for line in note.splitlines()),
        "arena_bytes": plan.peak_bytes, "arena_kb": f"{plan.peak_bytes / 1024:.1f}",
        "alignment": plan.memory_plan.alignment, "flash_bytes": n_flash,
        "macs": graph.total_macs(), "ops": sum(c.count("status =") for c in calls),
        "in_h": in_h, "in_w": in_w, "in_c": in_c, "in_bytes": x.nbytes,
        "in_scale": _float(q_in.scale), "in_zp": int(q_in.zero_point),
        "classes": y.shape[-1], "out_bytes": y.nbytes,
        "out_scale": _float(q_out.scale), "out_zp": int(q_out.zero_point),
        "out_offset": plan.tensor_offsets[y.name],
        "kernels": kernels, "tjx_sources": " ".join(f"{f}.c" for f in tjx),
        "headers": "arm_nnfunctions.h" + (" and tjx_kernels.h" if tjx else ""),
        "tjx_include": '#include "tjx_kernels.h"\n' if tjx else "",
        "guard": guard, "externs": "\n".join(writer.externs) + "\n",
        "statics": "\n".join(writer.statics) + "\n", "calls": "\n".join(calls),
        "arrays": "\n".join(writer.arrays),
    }
    values.update(_input_sections(plan, values, x.nbytes))
    files = {
        f"{prefix}_model.h": render("model.h.in", values),
        f"{prefix}_model.c": render("model.c.in", values),
        f"{prefix}_weights.c": render("weights.c.in", values),
        f"{prefix}_check.c": render("check.c.in", values),
        f"{prefix}_firmware.c": render("firmware.c.in", values),
        "Makefile": render("Makefile.in", values),
    }
    files.update(runtime_files())
    return files


def _input_sections(plan: Plan, values: Mapping[str, object], image_bytes: int) -> dict[str, str]:
    """The parts of the header and of ``model.c`` that depend on where the image lives
    (``plan.input_mode``): the sections of ``templates/input_arena.in`` or ``input_caller.in``
    (with, for a patch plan with the image outside, ``invoke_rows.in``'s), rendered with ``values``
    (the calls included), and ``arena_image``, what the header says the arena holds of the image."""
    sch, x_in = plan.schedule, plan.graph.inputs[0]
    if plan.input_mode == "arena":
        out = render_sections("input_arena.in", dict(values, in_offset=plan.tensor_offsets[x_in]))
        return dict(out, arena_image="the input image")
    rows = {"usage": "", "api": "", "invoke": ""}
    if sch is not None:
        bands = [[sch.region(x_in, i, j) for j in range(sch.p)] for i in range(sch.p)]
        halo = max([0] + [max(0, bands[i - 1][0][1] - bands[i][0][0]) for i in range(1, sch.p)])
        rows = {k: "\n" + v for k, v in render_sections("invoke_rows.in", dict(
            values, patches=f"{sch.p}x{sch.p}", halo=halo,
            max_rows=max(y1 - y0 for band in bands for y0, y1, _, _ in band),
            max_cols=max(x1 - x0 for band in bands for _, _, x0, x1 in band))).items()}
    out = render_sections("input_caller.in", dict(
        values, has_rows=int(sch is not None), invoke_rows_usage=rows["usage"], rows_api=rows["api"],
        rows_invoke=rows["invoke"]))
    image = ("one patch's region of the input image at a time (the whole image is the caller's: "
             f"{image_bytes} bytes outside the arena)" if sch is not None else
             f"no part of the input image (the caller's: {image_bytes} bytes outside the arena)")
    return dict(out, arena_image=image)


def tjx_functions(plan: Plan) -> tuple[str, ...]:
    """tinyjax's own kernels (``tjx_*``, no CMSIS-NN counterpart) the plan's C calls, sorted; each
    lives in ``tinyjax_runtime/src/<name>.c``. A patch plan's loop adds ``tjx_copy_region_s8``."""
    calls = {k.call for k in plan.kernels.values() if k.call and k.call.startswith("tjx_")}
    if plan.schedule is not None:
        calls.add("tjx_copy_region_s8")
    return tuple(sorted(calls))


def runtime_files() -> dict[str, str]:
    """The C runtime as export files: ``tinyjax_runtime/{include,src,mcu}/...``."""
    out = {}
    root = c_runtime.RUNTIME_DIR
    for sub in ("include", "src", "mcu"):
        for path in sorted((root / sub).iterdir()):
            if path.is_file() and path.suffix in (".c", ".h", ".ld"):
                out[f"tinyjax_runtime/{sub}/{path.name}"] = path.read_text()
    return out
