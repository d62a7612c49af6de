"""Execution orders of a deployment graph: the given one, a memory-greedy one and an enumeration
of topological orders, which ``memory.plan_graph`` plans and compares when the graph branches.

Orders are tuples of op indices into ``graph.ops``. A chain (every op reads its predecessor's
output: MCUNet, MobileNet, EfficientNet) has exactly one order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tinyjax.codegen.graph import Graph
from tinyjax.errors import GraphError

__all__ = ["dependencies", "enumerate_orders", "explicit_order", "greedy_order", "is_chain"]



def is_chain(graph: Graph) -> bool:
    """True when each op reads its predecessor's output: then the given order is the only
    topological order (a DAG has a unique topological order iff it has a Hamiltonian path)."""
    ops = graph.ops
    for a, b in zip(ops, ops[1:]):
        if a.outputs[0] not in b.inputs and not set(a.outputs).intersection(b.inputs):
            return False
    return True


def dependencies(graph: Graph) -> list[list[int]]:
    producer = graph.producers()
    return [sorted({producer[t] for t in op.inputs if t in producer}) for op in graph.ops]


def enumerate_orders(deps: list[list[int]], limit: int) -> list[tuple[int, ...]]:
    """Up to ``limit`` topological orders, depth first (lowest op index first at each step)."""
    n = len(deps)
    users: list[list[int]] = [[] for _ in range(n)]
    indeg = [len(d) for d in deps]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    out: list[tuple[int, ...]] = []
    cur: list[int] = []

    def rec(ready: list[int]) -> None:
        if len(out) >= limit:
            return
        if not ready:
            if len(cur) == n:
                out.append(tuple(cur))
            return
        for i in sorted(ready):
            nxt = [r for r in ready if r != i]
            for u in users[i]:
                indeg[u] -= 1
                if indeg[u] == 0:
                    nxt.append(u)
            cur.append(i)
            rec(nxt)
            cur.pop()
            for u in users[i]:
                indeg[u] += 1
            if len(out) >= limit:
                return

    rec([i for i in range(n) if indeg[i] == 0])
    return out


def greedy_order(graph: Graph, deps: list[list[int]], nbytes: Mapping[str, int]) -> tuple[int, ...]:
    """At each step run the ready op that adds the fewest live bytes (output minus inputs it
    frees); ties by graph index."""
    n = len(deps)
    remaining = {t: len(c) for t, c in graph.consumers().items()}
    indeg = [len(d) for d in deps]
    users: list[list[int]] = [[] for _ in range(n)]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    ready = {i for i in range(n) if indeg[i] == 0}
    order = []
    outputs = set(graph.outputs)
    while ready:
        def delta(i: int) -> tuple[int, int]:
            op = graph.ops[i]
            freed = sum(nbytes[t] for t in set(op.inputs)
                        if remaining[t] == op.inputs.count(t) and t not in outputs)
            return (nbytes[op.outputs[0]] - freed, i)

        i = min(ready, key=delta)
        ready.remove(i)
        order.append(i)
        for t in graph.ops[i].inputs:
            remaining[t] -= 1
        for u in users[i]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.add(u)
    return tuple(order)


def explicit_order(graph: Graph, names: Sequence[str]) -> tuple[int, ...]:
    index = {op.name: i for i, op in enumerate(graph.ops)}
    try:
        order = tuple(index[n] for n in names)
    except KeyError as e:
        raise GraphError(f"order names an unknown op {e.args[0]!r}") from None
    if sorted(order) != list(range(len(graph.ops))):
        raise GraphError("order must name every op of the graph exactly once")
    done = set(graph.inputs)
    for i in order:
        op = graph.ops[i]
        for t in op.inputs:
            if t not in done:
                raise GraphError(f"order runs {op.name} before its input {t!r} is written")
        done.update(op.outputs)
    return order
