"""MCUNet's TinyNAS, in the order it runs.

:mod:`~tinyjax.search.tinynas.space` (the search space and its sub-networks),
:mod:`~tinyjax.search.tinynas.stage1` and :mod:`~tinyjax.search.tinynas.stage1_report` (stage 1:
the space whose fitting sub-networks have the most MACs), :mod:`~tinyjax.search.tinynas.supernet` and
:mod:`~tinyjax.search.tinynas.supernet_train` (the weight-sharing supernet and its training),
:mod:`~tinyjax.search.tinynas.evolution` and :mod:`~tinyjax.search.tinynas.evolution_plots` (the
evolutionary search under the memory check), :mod:`~tinyjax.search.tinynas.data` (the search's
arrays), :mod:`~tinyjax.search.tinynas.export` (the winner's C, checked), and
:mod:`~tinyjax.search.tinynas.stages` / :mod:`~tinyjax.search.tinynas.run` (the end-to-end,
resumable run: :func:`run_search`). The run's names resolve lazily here.
"""

from __future__ import annotations

_PUBLIC = ("Budget", "STAGES", "run_search")
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import tinyjax.search.tinynas.run as run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
