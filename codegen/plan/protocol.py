"""What every kind of memory plan offers: :class:`Plan`.

A layer-by-layer plan (:class:`~tinyjax.codegen.plan.graph_plan.GraphPlan`) and a patch-based one
(:class:`~tinyjax.codegen.plan.patch.PatchPlan`) differ in how they lay out the arena, not in what
the emitter, the reports, the export and the search read from them: the graph and target planned,
the execution order, where each whole tensor and each op's scratch live, the peak and its lower
bound, the layer-by-layer peak for comparison, and ``schedule``, the patch schedule whose loop the
C runs first (``None``: every op once, layer by layer). Code that needs to tell the kinds apart asks
``plan.schedule is None``; a new kind of plan implements this protocol and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tinyjax.codegen.graph import Graph
    from tinyjax.codegen.plan.buffers import MemoryPlan
    from tinyjax.codegen.plan.schedule import PatchSchedule

__all__ = ["ArenaFigures", "Plan"]


@runtime_checkable
class Plan(Protocol):
    """A graph's arena layout, whatever its kind (module docstring)."""

    #: the planned graph
    graph: Graph
    #: target name (selects kernels and their scratch)
    target: str
    #: op names in execution order
    order: tuple[str, ...]
    #: the buffers and their offsets (:class:`~tinyjax.codegen.plan.buffers.MemoryPlan`)
    memory_plan: MemoryPlan
    #: per op of ``graph.ops``: whether it writes over an input's bytes
    in_place: tuple[bool, ...]
    #: arena offset of every whole tensor the plan holds
    tensor_offsets: Mapping[str, int]
    #: op name -> arena offset of its scratch (ops with scratch only)
    scratch_offsets: Mapping[str, int]
    #: the kernels planned for: ``"tinyjax"`` or ``"cmsis-nn"`` (``targets.KERNEL_SETS``)
    kernel_set: str
    #: where the input image lives: ``"arena"`` (counted) or ``"caller"`` (the caller's buffer)
    input_mode: str

    @property
    def schedule(self) -> PatchSchedule | None:
        """The patch schedule run first, ``None`` for layer by layer."""

    @property
    def peak_bytes(self) -> int:
        """The arena's size in bytes: every byte the network needs at run time."""

    @property
    def lower_bound_bytes(self) -> int:
        """No placement of the same buffers uses fewer bytes."""

    @property
    def layer_peak_bytes(self) -> int:
        """The layer-by-layer plan's peak (this plan's own for a layer-by-layer plan)."""


class ArenaFigures:
    """The figures every plan reads off its ``memory_plan`` (a mix-in of both plan kinds)."""

    memory_plan: MemoryPlan
    graph: Graph
    input_mode: str

    @property
    def image_bytes(self) -> int:
        """Bytes of the input image, in the arena or not (``input_mode``: ``"arena"`` or
        ``"caller"``, ``graph_plan.INPUT_MODES``)."""
        return self.graph.tensor(self.graph.inputs[0]).nbytes

    @property
    def peak_bytes(self) -> int:
        """Arena size in bytes (input image, activations, scratch, alignment padding)."""
        return self.memory_plan.peak_bytes

    @property
    def lower_bound_bytes(self) -> int:
        """``buffers.lower_bound`` of the same buffers: no placement can use fewer bytes."""
        return self.memory_plan.lower_bound_bytes
