"""Front end: a Flax model's jaxpr traced into the int8 graph IR.

:mod:`~tinyjax.codegen.trace.tracer` walks the jaxpr (:func:`trace`, :func:`trace_graph`),
:mod:`~tinyjax.codegen.trace.values` holds the symbolic values it propagates and
:mod:`~tinyjax.codegen.trace.handlers` one handler per JAX primitive. The public names of the
tracer resolve lazily here, so importing this package does not import JAX.
"""

from __future__ import annotations

_PUBLIC = ("LoweringError", "SUPPORTED", "trace", "trace_graph")
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import tinyjax.codegen.trace.tracer as tracer

        return getattr(tracer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
