"""Pictures and the Pareto front of a TinyNAS evolution (:mod:`tinyjax.search.tinynas.evolution`).

* :func:`pareto_front` — the candidates no other beats: the best score for at most this peak SRAM;
* :func:`progress_figure` — best and mean score of the population per generation;
* :func:`pareto_figure` — every scored candidate as score vs peak SRAM (kB), the front, the budget.

Records are :class:`~tinyjax.search.tinynas.evolution.Record` objects or their ``to_dict()`` (what a
search's saved state holds). matplotlib is imported inside the figure functions only (Agg canvas,
no pyplot, no global state); the caller saves the Figure (``fig.savefig``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tinyjax.search.tinynas.evolution import EvolutionState

__all__ = ["pareto_figure", "pareto_front", "progress_figure"]

KB = 1024


def _get(record, name: str):
    return record[name] if isinstance(record, Mapping) else getattr(record, name)


def pareto_front(records: Sequence) -> list:
    """The records on the (peak SRAM, score) Pareto front, by increasing peak: each has a strictly
    higher score than every record with a smaller or equal peak (of equal peaks only the best
    score is kept; of equal scores and peaks, the first record)."""
    order = sorted(range(len(records)),
                   key=lambda i: (_get(records[i], "peak_sram_bytes"), -_get(records[i], "score"), i))
    front, best = [], None
    for i in order:
        s = _get(records[i], "score")
        if best is None or s > best:
            front.append(records[i])
            best = s
    return front


def _figure(size: tuple[float, float], dpi: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def progress_figure(state: EvolutionState, score_name: str = "score",
                    size: tuple[float, float] = (7.0, 4.5), dpi: int = 100) -> Figure:
    """Best and mean ``score_name`` of the population per generation (lines with gids ``best``
    and ``mean``; generation 0 is the random first population)."""
    fig, ax = _figure(size, dpi)
    gens = [h["generation"] for h in state.history]
    ax.plot(gens, [h["best"] for h in state.history], color="C0", lw=1.8, label="best", gid="best")
    ax.plot(gens, [h["mean"] for h in state.history], color="C1", lw=1.2, label="population mean",
            gid="mean")
    ax.set_xlabel("generation")
    ax.set_ylabel(score_name)
    evaluated = state.history[-1]["evaluated"] if state.history else 0
    ax.set_title(f"evolution of {_space_name(state)}: {evaluated} archs scored", loc="left",
                 fontsize=10)
    ax.grid(color="#eeeeee", lw=0.6)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _space_name(state) -> str:
    return f"tinynas_w{state.space['width']:g}_r{state.space['resolution']}"


def pareto_figure(records: Sequence, budget_bytes: int | None = None, score_name: str = "accuracy",
                  size: tuple[float, float] = (7.0, 4.5), dpi: int = 100) -> Figure:
    """Every scored candidate as ``score_name`` vs peak SRAM (kB, 1 kB = 1024 B) (a scatter with
    gid ``candidates``), the Pareto front as a step line (gid ``front``: the best score for at most
    this peak) and the SRAM budget as a vertical line (gid ``budget``) when given."""
    fig, ax = _figure(size, dpi)
    peaks = [_get(r, "peak_sram_bytes") / KB for r in records]
    scores = [_get(r, "score") for r in records]
    ax.scatter(peaks, scores, s=9, color="C0", alpha=0.45, lw=0, label=f"{len(records)} candidates",
               gid="candidates")
    front = pareto_front(records)
    if front:
        fx = [_get(r, "peak_sram_bytes") / KB for r in front]
        fy = [_get(r, "score") for r in front]
        ax.step(fx, fy, where="post", color="C3", lw=1.5, marker="o", ms=3.5,
                label=f"Pareto front ({len(front)})", gid="front")
    if budget_bytes is not None:
        ax.axvline(budget_bytes / KB, color="k", ls="--", lw=1.0,
                   label=f"budget {budget_bytes / KB:.1f} kB", gid="budget")
    ax.set_xlabel("peak SRAM (kB, planned arena)")
    ax.set_ylabel(score_name)
    ax.grid(color="#eeeeee", lw=0.6)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig
