"""Stage 1's report: the table of the spaces and the MACs CDF of their fitting sub-networks
(MCUNet's Figure 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tinyjax.search.tinynas.stage1 import DEFAULT_MIN_FRACTION, SpaceStats, rank_key
from tinyjax.units import format_bytes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["cdf_figure", "table_markdown"]


def table_markdown(stats: Sequence[SpaceStats], chosen: SpaceStats | None = None) -> str:
    """A Markdown table, one row per space: fraction that fits, mean MACs of those, smallest
    peak seen; the chosen space is bold and marked ``←``."""
    lines = ["| width | resolution | fit | mean MACs (fitting) | smallest peak | |",
             "|---:|---:|---:|---:|---:|:--|"]
    for s in stats:
        mean = "–" if s.mean_macs is None else f"{s.mean_macs / 1e6:.1f}M"
        cells = [f"{s.width:g}", str(s.resolution), f"{s.fraction:.0%}", mean,
                 format_bytes(s.min_peak)]
        mark = chosen is not None and s.key == chosen.key
        if mark:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + (" | ← chosen |" if mark else " | |"))
    return "\n".join(lines) + "\n"


def cdf_figure(stats: Sequence[SpaceStats], chosen: SpaceStats | None = None, top: int = 8,
               min_fraction: float = DEFAULT_MIN_FRACTION) -> Figure:
    """The MACs CDF of the fitting sub-networks (x: MACs in M, y: fraction of the fitting models
    with at most x) of the ``top`` best spaces by the criterion, plus ``chosen``; legend entries
    like ``w0.5 r144 (63% fit, mean 52.1M)``, the chosen one drawn thick. A matplotlib
    ``Figure`` on an Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = sorted((s for s in stats if s.fitting and s.fraction >= min_fraction), key=rank_key)
    shown = ok[:top]
    if chosen is not None and chosen.fitting and all(s.key != chosen.key for s in shown):
        shown.append(chosen)
    fig = Figure(figsize=(7.5, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for s in shown:
        n = len(s.macs)
        xs = [m / 1e6 for m in s.macs]
        ys = [(i + 1) / n for i in range(n)]
        is_chosen = chosen is not None and s.key == chosen.key
        ax.step(xs, ys, where="post", linewidth=2.6 if is_chosen else 1.2, gid=s.label,
                label=f"{s.label} ({s.fraction:.0%} fit, mean {s.mean_macs / 1e6:.1f}M)"
                + (" ← chosen" if is_chosen else ""))
    s0 = stats[0] if stats else None
    budget = (f" within {format_bytes(s0.sram_bytes)} SRAM, {format_bytes(s0.flash_bytes)} flash"
              if s0 else "")
    ax.set_title("TinyNAS stage 1: MACs of the sub-networks that fit" + budget, fontsize=10)
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel("fraction of fitting sub-networks ≤ x")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if shown:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
