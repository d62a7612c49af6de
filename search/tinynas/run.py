"""TinyNAS end to end (MCUNet's two stages, co-designed with tinyjax's memory plan), in a resumable
work directory. ``python -m tinyjax.search --budget 320kB`` runs :func:`run_search`.

Stages, each leaving its result in ``WORKDIR`` before the next starts (a rerun of the same command
skips what is finished; a killed stage resumes from its own checkpoint):

1. ``stage1``: every (width, resolution) space of the grid, ``stage1.samples`` random sub-networks
   each, planned by the codegen planner; the chosen space has the largest mean MACs among those
   whose fitting share is at least ``stage1.min_fraction`` (:mod:`tinyjax.search.tinynas.stage1`).
   ``stage1.json`` (per space, saved as it goes), ``stage1.md`` (the table), ``stage1_cdf.png``.
2. ``supernet``: the chosen space's weight-sharing supernet, sandwich-trained with K sub-networks
   vmapped per step (:mod:`tinyjax.search.tinynas.supernet`), on the dataset rendered at the space's
   resolution, minus a held-out part of the training split the evolution scores on.
   ``supernet/`` (checkpoints).
3. ``evolution``: OFA's evolutionary search; every candidate planned before it is scored, scores
   are top-1 on the held-out images after BN recalibration (:mod:`tinyjax.search.tinynas.evolution`).
   ``evolution.json`` (after each generation), ``evolution.png``, ``pareto.png``; then the winner's
   plan is verified (``codegen.planner.verify``) and ``best_spec.json`` written.
4. ``train``: the winner trained by ``tinyjax.train`` (``train/``): with ``finetune_init =
   "inherit"`` (``--finetune inherit``) from its own weights in the supernet, BN recalibrated
   (``winner_inherited.msgpack``, written by the evolution stage), with the ``finetune`` recipe;
   with ``"scratch"`` from a random init with the ``scratch`` recipe, so that the co-design
   benchmark compares every network under one recipe and the supernet's weight-sharing cost is
   measured against a network trained alone. The evolution stage also scores the supernet's
   largest and smallest sub-networks on the held-out images (``supernet.json``).
5. ``export``: ``tinyjax.export`` of ``train/`` into ``c/`` (int8 C, test vectors), built on the
   host and run on the test vectors: its output must equal the integer reference's bit for bit.
   With ``arm-none-eabi-gcc`` on the PATH, the Cortex-M7 image is built and sized too.

``summary.json`` / ``summary.md`` gather the figures; ``state.json`` the seconds of each stage.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from tinyjax.errors import SearchError
from tinyjax.files import write_atomic
from tinyjax.units import format_bytes

__all__ = ["Budget", "STAGES", "run_search"]

STAGES = ("stage1", "supernet", "evolution", "train", "export")


@dataclasses.dataclass(frozen=True)
class Budget:
    """What must fit: ``sram_bytes`` for the arena (the SRAM given minus ``reserve_bytes`` kept
    for the application), ``flash_bytes`` for weights and constants, on kernel ``target``, with
    tinyjax's planner (``in_place``) or a layer-by-layer one."""

    sram_bytes: int
    flash_bytes: int
    target: str
    reserve_bytes: int = 0
    device: str | None = None
    in_place: bool = True   # False: a layer-by-layer planner (the co-design benchmark's baseline)
    patch: bool = False     # True: a network fits when a patch schedule's plan does (--patch auto)
    max_mac_overhead: float = 0.15   # the cap on a patch schedule's recomputed MACs (a fraction)

    def text(self) -> str:
        dev = f" ({self.device})" if self.device else ""
        dev += "" if self.in_place else ", planned layer by layer (no in-place ops)"
        if self.patch:
            dev += f", patch-based inference allowed (at most {self.max_mac_overhead:.0%} more MACs)"
        res = (f", {format_bytes(self.reserve_bytes)} of it kept for the application"
               if self.reserve_bytes else "")
        return (f"{format_bytes(self.sram_bytes + self.reserve_bytes)} SRAM{res}, "
                f"{format_bytes(self.flash_bytes)} flash, {self.target}{dev}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if not self.patch:      # a layer-by-layer search keeps the fingerprint it always had
            del d["patch"], d["max_mac_overhead"]
        return d


# -- the work directory ------------------------------------------------------------------------------

class WorkDir:
    """``WORKDIR`` and ``state.json``: the fingerprint of what is searched (budget and config) and
    the seconds each stage took, summed over resumed runs."""

    def __init__(self, path: Path, fingerprint: dict):
        self.path = path
        self.state_path = path / "state.json"
        self.path.mkdir(parents=True, exist_ok=True)
        if self.state_path.is_file():
            try:
                state = json.loads(self.state_path.read_text())
            except (OSError, ValueError) as e:
                raise SearchError(f"{self.state_path} is unreadable ({e}); remove it or use a new "
                                  "--workdir") from None
            if state.get("fingerprint") != fingerprint:
                raise SearchError(f"{path} holds a search with another budget or config; use a new "
                                  "--workdir, or the same arguments to resume it")
            self.state = state
        else:
            if any(self.path.iterdir()):
                raise SearchError(f"{path} is not empty and holds no search (no state.json); give a "
                                  "new or empty --workdir")
            self.state = {"fingerprint": fingerprint, "seconds": {}, "done": []}
            self.save()

    def save(self) -> None:
        write_atomic(self.state_path, json.dumps(self.state, indent=1) + "\n")

    def done(self, stage: str) -> bool:
        return stage in self.state["done"]

    def add_seconds(self, stage: str, seconds: float) -> None:
        self.state["seconds"][stage] = round(self.state["seconds"].get(stage, 0.0) + seconds, 1)
        self.save()

    def finish(self, stage: str) -> None:
        if stage not in self.state["done"]:
            self.state["done"].append(stage)
        self.save()

    def write_json(self, name: str, value) -> Path:
        return write_atomic(self.path / name, json.dumps(value, indent=1) + "\n")

    def read_json(self, name: str):
        return json.loads((self.path / name).read_text())


def fingerprint(cfg, budget: Budget) -> dict:
    return {"budget": budget.to_dict(), "config": json.loads(cfg.to_json())}


def _timed(wd: WorkDir, stage: str, fn, *args):
    """Run one stage unless finished; its seconds are added to ``state.json`` even when a
    later kill interrupts it (they are saved when the stage returns or raises)."""
    t0 = time.time()
    try:
        return fn(*args)
    finally:
        wd.add_seconds(stage, time.time() - t0)


def run_search(cfg, budget: Budget, workdir: str | Path, log=print) -> dict:
    """The whole search (module docstring); returns the summary dict also written to
    ``summary.json``. Each stage shows its own progress on stderr; ``log`` prints a line."""
    from tinyjax.search.tinynas import stages as st

    st.check_reachable(cfg, budget)   # before the work directory is made
    wd = WorkDir(Path(workdir), fingerprint(cfg, budget))
    t_all = time.time()
    space = _timed(wd, "stage1", st.stage1, cfg, budget, wd, log)
    data = variables = None
    if not wd.done("evolution"):   # what the evolution needs; later stages need neither
        data = _timed(wd, "data", st.load_data, cfg, space, log)
        variables = _timed(wd, "supernet", st.supernet, cfg, space, data, wd, log)
    best = _timed(wd, "evolution", st.evolution, cfg, budget, space, data, variables, wd, log)
    trained = _timed(wd, "train", st.train, cfg, space, best, wd, log)
    exported = _timed(wd, "export", st.export, cfg, budget, wd, log)
    summary = st.summarise(cfg, budget, space, best, trained, exported, wd)
    wd.write_json("summary.json", summary)
    write_atomic(wd.path / "summary.md", st.summary_markdown(summary))
    log(f"search finished in {time.time() - t_all:,.0f} s this run "
        f"({sum(wd.state['seconds'].values()):,.0f} s over all runs); summary in {wd.path / 'summary.md'}")
    return summary
