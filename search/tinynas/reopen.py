"""A search's work directory reopened after the supernet stage: what the benchmarks that compare
sub-networks of one supernet need (``benchmarks/supernet_rank.py``, ``benchmarks/search_vs_random.py``).

:func:`reopen` reads ``state.json`` (the config and budget the search ran with), the space stage 1
chose, the search's data arrays and the trained supernet (its checkpoints: nothing is retrained)
and returns a :class:`Reopened` that scores sub-networks as the evolution did
(:meth:`Reopened.score`) and trains one the way the search trains its winner
(:meth:`Reopened.train`: fine-tuned from its inherited weights, or from scratch).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tinyjax.errors import SearchError

__all__ = ["Reopened", "reopen"]


@dataclasses.dataclass
class Reopened:
    cfg: object            # the search's ConfigDict
    budget: object         # run.Budget
    space: object          # SearchSpace chosen by stage 1
    check: object          # evolution.MemoryCheck of the budget
    data: dict             # stages.load_data: "train", "holdout"
    variables: dict        # the supernet's params and batch_stats
    path: Path
    _evaluator: object = None
    _validation_evaluator: object = None

    @property
    def evaluator(self):
        from tinyjax.search.tinynas.stages import subnet_evaluator

        if self._evaluator is None:
            self._evaluator = subnet_evaluator(self.cfg, self.space, self.data, self.variables)
        return self._evaluator

    def score(self, archs) -> list[float]:
        """Held-out top-1 of ``archs`` with inherited weights and recalibrated BN (the evolution's
        score)."""
        return [float(x) for x in self.evaluator.evaluate(list(archs))]

    def score_validation(self, archs) -> list[float]:
        """Top-1 of ``archs`` with inherited weights and BN recalibrated as :meth:`score`
        recalibrates it, on the dataset's validation split at the search's resolution (images
        neither the supernet nor the evolution saw; 1,200 on the embedded dataset against the 500
        held-out ones :meth:`score` uses, so a ranking with less sampling noise)."""
        if self._validation_evaluator is None:
            from tinyjax.search.tinynas.data import load_arrays
            from tinyjax.search.tinynas.stages import search_resolution
            from tinyjax.search.tinynas.supernet import SubnetEvaluator

            vx, vy = load_arrays(self.cfg.data, "validation", search_resolution(self.cfg, self.space))
            calib = self.data["train"][0][: int(self.cfg.supernet.calib_images)]
            self._validation_evaluator = SubnetEvaluator(self.space, self.variables, calib, vx, vy,
                                                         int(self.cfg.supernet.eval_batch_size))
        return [float(x) for x in self._validation_evaluator.evaluate(list(archs))]

    def winner(self):
        """The evolution's best arch (``evolution.json``) and the number of archs it scored."""
        from tinyjax.search.tinynas.evolution import EvolutionState

        state = EvolutionState.from_dict(json.loads((self.path / "evolution.json").read_text()))
        return state.best.arch, len(state.records)

    def train(self, arch, workdir: str | Path, *, init: str = "inherit", seed: int = 0,
              progress=None, **overrides) -> dict:
        """Train ``arch`` as the search trains its winner (``cfg.finetune`` from its inherited
        weights, or ``cfg.scratch`` from a random init with ``init="scratch"``), in a resumable
        ``workdir``; ``overrides`` set fields of that training config. Returns the final
        validation top-1 and the last evaluations."""
        from tinyjax.search.tinynas import stages
        from tinyjax.train.trainer import train_and_evaluate

        if init not in stages.FINETUNE:
            raise SearchError(f"init must be one of {', '.join(stages.FINETUNE)}, got {init!r}")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        model_init = ""
        if init == "inherit":
            model_init = str(workdir.parent / f"{workdir.name}.inherited.msgpack")
            if not Path(model_init).is_file():
                stages.write_inherited(self.space, self.variables, self.evaluator, arch, model_init)
        t = stages.train_config(self.cfg, self.space.spec(arch), model_init)
        with t.unlocked():
            t.seed = t.data_seed = int(seed)   # with inherited weights, the data order is what varies
            for key, value in overrides.items():
                t[key] = value
        result = train_and_evaluate(t, workdir, progress=progress)
        if result.preempted:
            raise SearchError(f"training in {workdir} stopped by {result.signal_name}; rerun to resume")
        return {"top1": float(result.final_eval["eval_top1"]), "evals": stages.evaluations(workdir)}


def reopen(workdir: str | Path, log=lambda _line: None) -> Reopened:
    """The search in ``workdir``, reopened after its supernet stage (the supernet is read from
    its checkpoints). A work directory without a finished supernet is a :class:`SearchError`."""
    import ml_collections

    from tinyjax.search.tinynas import stages
    from tinyjax.search.tinynas.run import Budget, WorkDir
    from tinyjax.search.tinynas.space import SearchSpace

    path = Path(workdir)
    try:
        state = json.loads((path / "state.json").read_text())
    except (OSError, ValueError) as e:
        raise SearchError(f"{path} holds no readable search ({e}); give the --workdir of a "
                          "`python -m tinyjax.search` run") from None
    if "supernet" not in state.get("done", []):
        raise SearchError(f"the search in {path} has not finished its supernet stage; rerun its "
                          "command first")
    fp = state["fingerprint"]
    cfg = ml_collections.ConfigDict(fp["config"])
    budget = Budget(**fp["budget"])
    wd = WorkDir(path, fp)
    space = SearchSpace.from_dict(wd.read_json("stage1.json")["chosen"])
    data = stages.load_data(cfg, space, log)
    variables = stages.supernet(cfg, space, data, wd, log)
    return Reopened(cfg, budget, space, stages.memory_check(space, budget), data, variables, path)
