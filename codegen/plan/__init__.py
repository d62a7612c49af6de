"""Memory planning: where every byte of the arena goes.

:mod:`~tinyjax.codegen.plan.buffers` (buffers, the planner interface, the verifier and the lower
bound), :mod:`~tinyjax.codegen.plan.algorithms` (placement algorithms),
:mod:`~tinyjax.codegen.plan.orders` (execution orders), :mod:`~tinyjax.codegen.plan.graph_plan`
(a graph planned layer by layer: :func:`plan_graph`), :mod:`~tinyjax.codegen.plan.schedule` and
:mod:`~tinyjax.codegen.plan.patch` (patch-based inference: schedules and their plans),
:mod:`~tinyjax.codegen.plan.protocol` (what every kind of plan offers the emitter and the reports)
and :mod:`~tinyjax.codegen.plan.report` (tables and pictures of a plan)."""
