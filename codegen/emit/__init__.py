"""Back end: a quantised graph and its plan written as C, and the tools that build and run it.

:mod:`~tinyjax.codegen.emit.emitter` renders the templates of ``templates/`` (:func:`emit`),
:mod:`~tinyjax.codegen.emit.c_runtime` locates the C kernels of ``runtime/`` (package data the
emitter copies into an export), :mod:`~tinyjax.codegen.emit.toolchain` builds and runs C on the host,
under sanitizers and on emulated Cortex-M. The emitter's public names resolve lazily here.
"""

from __future__ import annotations

_PUBLIC = ("TEMPLATES_DIR", "CallWriter", "c_identifier", "emit", "render")
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import tinyjax.codegen.emit.emitter as emitter

        return getattr(emitter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
