"""The data behind the Rubik's-cube formula: random (r, d, w) models at MACs targets, trained.

    python -m tinyjax.search.rubik.sampling --targets 3M,6M --samples 16 --workdir runs/rubik \\
        --config configs/rubik_embedded.py

1. **Sampling.** The base network is the config's model (``model`` or ``spec``) at the config's
   ``resolution`` with the dataset's classes (EfficientNet-B0 by default; ``--base NAME|FILE.json``
   picks another). ``--samples`` models are dealt round-robin over the targets; each is drawn by
   rejection: (r, d, w) uniform in the ranges, scaled with TinyNet's rules, kept when its exact
   counted MACs (:func:`tinyjax.counting.count`) lie within ``--tolerance`` of its target. Draws
   that round to a network already taken are redrawn. A seed makes the draw repeatable.
2. **Training.** Each model is trained in-process with the one config
   (:func:`tinyjax.train.trainer.train_and_evaluate`) in ``WORKDIR/models/NAME``; ``population.size``
   seeds of it are vmapped as a population (they share shapes), and its top-1 is their mean.
3. **Resuming.** A finished model's result is ``WORKDIR/results/NAME.json``, written atomically;
   a rerun never retrains it. A killed run resumes: finished models are skipped and the model in
   progress resumes from its last checkpoint. ``WORKDIR/plan.json`` pins the draw, so a rerun with
   other sampling arguments is refused instead of mixing two experiments.
4. **The frontier.** Bands are the targets' windows (target ±tolerance, which every sample of a
   target falls in); the frontier is the ``--per-band`` best models of each band by top-1 (ties:
   fewer MACs). ``WORKDIR/samples.json`` holds every result, ``frontier.json`` the frontier as
   ``[{"macs", "r", "d", "w", "top1"}]``, then :func:`tinyjax.search.rubik.fit_formula` fits r
   and d over MACs: ``formula.json`` and the plot ``formula.png``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinyjax.errors import SamplingError, run_cli
from tinyjax.scaling import TINYNET, scale
from tinyjax.spec import ModelSpec

__all__ = ["Sample", "SamplingError", "frontier", "host_devices_for", "parse_macs", "read_results",
           "sample_models"]

PROG = "tinyjax.search.rubik.sampling"
RESULT_KEYS = ("name", "target", "macs", "params", "r", "d", "w", "resolution", "top1", "top1_seeds")


def parse_macs(text: str) -> int:
    """``"30M"`` -> 30_000_000 (:func:`tinyjax.units.parse_count`: k, M, G are decimal, as
    MACs are quoted in the papers)."""
    from tinyjax.units import UnitError, parse_count

    try:
        return parse_count(text)
    except UnitError as e:
        raise SamplingError(f"MACs target {text!r}: {e}") from None


def parse_targets(text: str) -> list[int]:
    """``"30M,60M"`` -> ``[30_000_000, 60_000_000]`` (sorted, duplicates removed)."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise SamplingError("--targets needs at least one MACs target, e.g. --targets 30M,60M")
    return sorted({parse_macs(p) for p in parts})


def parse_range(text: str, name: str) -> tuple[float, float]:
    """``"0.5,1.0"`` -> ``(0.5, 1.0)``, a positive interval."""
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise SamplingError(f"--{name} must be two numbers LOW,HIGH such as 0.5,1.0; "
                            f"got {text!r}") from None
    if not (0 < lo <= hi) or not math.isfinite(hi):
        raise SamplingError(f"--{name} must satisfy 0 < LOW <= HIGH; got {text!r}")
    return lo, hi


@dataclasses.dataclass(frozen=True)
class Sample:
    """One drawn network: ``spec`` is ``base`` scaled by (r, d, w) and counted at ``macs``."""

    name: str
    target: int
    r: float
    d: float
    w: float
    macs: int
    params: int
    spec: ModelSpec

    def describe(self) -> dict:
        return {"name": self.name, "target": self.target, "r": self.r, "d": self.d, "w": self.w,
                "macs": self.macs, "params": self.params, "resolution": self.spec.resolution}


def sample_models(base: ModelSpec, targets: Sequence[int], n: int, *, tolerance: float = 0.05,
                  r_range=(0.5, 1.0), d_range=(0.5, 1.0), w_range=(0.5, 1.0), seed: int = 0,
                  max_draws: int = 20_000) -> list[Sample]:
    """``n`` distinct networks, dealt round-robin over ``targets`` (MACs), each ``base`` scaled by
    (r, d, w) drawn uniformly in the ranges (3 decimals) and accepted when its counted MACs are
    within ``tolerance`` (a fraction) of its target. Raises :class:`SamplingError` when a target
    is out of reach after ``max_draws`` draws."""
    from tinyjax.counting import count

    if n < 1:
        raise SamplingError(f"--samples must be at least 1, got {n}")
    if not 0 < tolerance < 1:
        raise SamplingError(f"--tolerance must be a fraction in (0, 1), got {tolerance}")
    rng = np.random.default_rng(seed)
    taken: set[ModelSpec] = set()
    out = []
    for i in range(n):
        target = targets[i % len(targets)]
        for _ in range(max_draws):
            r, d, w = (round(float(rng.uniform(*rg)), 3) for rg in (r_range, d_range, w_range))
            spec = scale(base, r, d, w, rule=TINYNET, name=f"{base.name}_r{r}_d{d}_w{w}")
            if spec.with_(name="") in taken:
                continue
            stats = count(spec)
            if abs(stats.macs / target - 1) <= tolerance:
                taken.add(spec.with_(name=""))
                out.append(Sample(f"model_{i:03d}", target, r, d, w, stats.macs, stats.params, spec))
                break
        else:
            raise SamplingError(
                f"no new network within {tolerance:.0%} of {target / 1e6:g}M MACs after {max_draws} "
                f"draws of r in {r_range}, d in {d_range}, w in {w_range} (base {base.name}: "
                f"{count(base).macs / 1e6:.2f}M MACs); move the target or widen the ranges")
    return out


# -- results and the frontier -----------------------------------------------------------------------

def read_results(results_dir: Path) -> dict[str, dict]:
    """``{name: result}`` of every finished model in ``results_dir``. A file that is not a result
    (a half-written file cannot exist: they are written atomically, but a hand edit can) raises
    :class:`SamplingError` naming it."""
    out = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            missing = [k for k in RESULT_KEYS if k not in data]
            if missing:
                raise ValueError(f"no {', '.join(missing)}")
            float(data["top1"])
        except (ValueError, TypeError) as e:
            raise SamplingError(f"result file {path} is corrupt ({e}); delete it and rerun to "
                                "retrain that model") from None
        out[path.stem] = data
    return out


def frontier(results: Sequence[dict], targets: Sequence[int], tolerance: float,
             per_band: int = 2) -> list[dict]:
    """The ``per_band`` best results (top-1, then fewer MACs) of each band, a band being a
    target's window ``[target·(1 - tolerance), target·(1 + tolerance)]``; sorted by MACs, as
    ``{"macs", "r", "d", "w", "top1"}``."""
    out = []
    for t in targets:
        band = [x for x in results if abs(x["macs"] / t - 1) <= tolerance + 1e-12]
        band.sort(key=lambda x: (-x["top1"], x["macs"]))
        out += [{"macs": int(x["macs"]), "r": x["r"], "d": x["d"], "w": x["w"],
                 "top1": float(x["top1"])} for x in band[:per_band]]
    return sorted(out, key=lambda x: x["macs"])


# -- training ---------------------------------------------------------------------------------------

def model_config(cfg, sample: Sample):
    """The training config of one sampled model: ``cfg`` with the sample's spec (whose resolution
    it carries)."""
    c = copy.deepcopy(cfg)
    c.spec = sample.spec.to_json(indent=None)
    c.resolution = 0
    return c


def train_sample(cfg, sample: Sample, workdir: Path, progress) -> tuple[dict | None, str | None]:
    """Train ``sample`` in ``workdir`` (resuming its checkpoint): ``(result, None)``, or
    ``(None, signal name)`` when SIGINT/SIGTERM stopped it (a checkpoint is saved)."""
    from tinyjax.train.trainer import train_and_evaluate

    t0 = time.time()
    result = train_and_evaluate(model_config(cfg, sample), workdir, progress=progress)
    if result.preempted:
        return None, result.signal_name
    top1 = np.asarray(result.final_eval["eval_top1"], np.float64).reshape(-1)
    return {**sample.describe(), "top1": float(top1.mean()), "top1_seeds": top1.tolist(),
            "steps": int(result.step), "train_seconds": round(time.time() - t0, 1)}, None


def host_devices_for(population: int) -> None:
    """Let a population of ``population`` members run on a CPU: the trainer puts one member per
    device of its mesh's population axis, and a CPU is one device unless XLA splits it
    (``--xla_force_host_platform_device_count``, the members then share the cores). Call before
    JAX first asks for its devices; a flag already set is left alone, accelerators ignore it."""
    import os

    flags = os.environ.get("XLA_FLAGS", "")
    if population > 1 and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={population}".strip()


def _fmt_eta(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def _check_plan(path: Path, plan: dict) -> None:
    from tinyjax.files import write_atomic

    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            raise SamplingError(f"{path} is corrupt; delete it (and the work directory's results, "
                                "which it describes) or choose another --workdir") from None
        if old != plan:
            changed = sorted(k for k in plan if old.get(k) != plan[k])
            raise SamplingError(f"{path.parent} holds a run with other sampling settings "
                                f"({', '.join(changed)} differ); rerun with the same arguments or "
                                "choose another --workdir")
        return
    write_atomic(path, json.dumps(plan, indent=1) + "\n")


def run_sampling(cfg, workdir: Path, base: ModelSpec, samples: list[Sample], targets: list[int],
                 tolerance: float, per_band: int, plan: dict, stream=None) -> int:
    """Train what is missing, then write samples.json, frontier.json, the formula and its plot.
    Returns the CLI's exit code (130 when Ctrl-C stopped a model, 0 after SIGTERM)."""
    from tinyjax.files import write_atomic
    from tinyjax.progress import Progress

    stream = stream or sys.stderr
    workdir.mkdir(parents=True, exist_ok=True)
    _check_plan(workdir / "plan.json", plan)
    results_dir = workdir / "results"
    results_dir.mkdir(exist_ok=True)
    results = read_results(results_dir)
    todo = [s for s in samples if s.name not in results]
    say = Progress(PROG, unit="model", stream=stream)
    say.status(f"{len(samples)} models over {', '.join(f'{t / 1e6:g}M' for t in targets)} MACs: "
               f"{len(samples) - len(todo)} already trained (kept in {results_dir}), "
               f"{len(todo)} to train")
    t0 = time.time()
    for i, s in enumerate(todo):
        tag = f"{PROG} [{len(samples) - len(todo) + i + 1}/{len(samples)} {s.name}]"
        say.status(f"{s.name}: r={s.r} d={s.d} w={s.w}, {s.spec.resolution} px, "
                   f"{s.macs / 1e6:.2f}M MACs (target {s.target / 1e6:g}M), {s.params:,} params")
        with Progress(tag, stream=stream) as progress:
            result, stopped_by = train_sample(cfg, s, workdir / "models" / s.name, progress)
        if result is None:
            say.status(f"{stopped_by}: stopped; run the same command again to resume")
            return 130 if stopped_by == "SIGINT" else 0
        write_atomic(results_dir / f"{s.name}.json", json.dumps(result, indent=1) + "\n")
        results[s.name] = result
        per_model = (time.time() - t0) / (i + 1)
        say.status(f"{s.name}: top-1 {result['top1']:.4f}; {len(results)}/{len(samples)} done, "
                   f"ETA {_fmt_eta(per_model * (len(todo) - i - 1))} for the rest")
    finished = [results[s.name] for s in samples]
    write_atomic(workdir / "samples.json", json.dumps(finished, indent=1) + "\n")
    front = frontier(finished, targets, tolerance, per_band)
    write_atomic(workdir / "frontier.json", json.dumps(front, indent=1) + "\n")
    say.status(f"frontier ({per_band} best per target band): "
               + ", ".join(f"{p['macs'] / 1e6:.2f}M r={p['r']} d={p['d']} w={p['w']} "
                           f"top-1 {p['top1']:.3f}" for p in front))
    fit_and_plot(workdir, base, front, finished, say)
    return 0


def fit_and_plot(workdir: Path, base: ModelSpec, front: list[dict], finished: list[dict], say) -> None:
    """The formula of the frontier (``formula.json``) and its plot (``formula.png``)."""
    from tinyjax.search.rubik.formula import fit_formula, plot_fit

    say.status(f"fitting r and d over MACs to the {len(front)} frontier points...")
    formula = fit_formula([(p["macs"], p["r"], p["d"]) for p in front], base=base,
                          source=f"frontier of {workdir} ({base.name} base)")
    formula.save(workdir / "formula.json")
    plot_fit(formula, workdir / "formula.png", frontier=front, samples=finished)
    say.status(f"wrote {workdir / 'samples.json'}, {workdir / 'frontier.json'}, "
               f"{workdir / 'formula.json'} and {workdir / 'formula.png'}")


# -- command line -----------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None):
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Sample (r, d, w) networks of a base model at MACs targets, train each with one "
                    "config, and write the frontier and the fitted Rubik's-cube formula. Rerunning "
                    "the same command resumes; finished models are never retrained.",
        epilog="Training overrides: --config.KEY=VALUE, e.g. --config.total_steps=200")
    parser.add_argument("--targets", required=True, help="MACs targets, comma-separated: 3M,6M")
    parser.add_argument("--samples", type=int, default=16, help="networks in all (default 16)")
    parser.add_argument("--workdir", required=True,
                        help="models/, results/, samples.json, frontier.json, formula.json/png")
    parser.add_argument("--config", required=True, metavar="FILE.py[:ARG]",
                        help="the training config every model is trained with; its model at its "
                             "resolution is the base network")
    parser.add_argument("--base", help="base network instead of the config's: a zoo name or a spec "
                                       "JSON file")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="accepted MACs distance to a target, a fraction (default 0.05)")
    for k in ("r", "d", "w"):
        parser.add_argument(f"--{k}", default="0.5,1.0", metavar="LOW,HIGH",
                            help=f"range {k} is drawn from (default 0.5,1.0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--per-band", type=int, default=2,
                        help="frontier models per target band (default 2)")
    from tinyjax.train.config import parse_with_overrides

    return parse_with_overrides(parser, argv)


def _base_config(cfg, base: str | None):
    if not base:
        return cfg
    path = Path(base)
    if base.endswith(".json"):
        if not path.is_file():
            raise SamplingError(f"base spec file {base} not found")
        try:
            cfg.spec = ModelSpec.from_json(path.read_text()).to_json(indent=None)
        except (ValueError, TypeError) as e:
            raise SamplingError(f"{base} is not a model spec: {e}") from None
    else:
        from tinyjax.zoo import get_spec

        get_spec(base)   # an unknown name: one line naming the closest zoo names
        cfg.model, cfg.spec = base, ""
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args, overrides = parse_args(argv)
    targets = parse_targets(args.targets)
    ranges = {k: parse_range(getattr(args, k), k) for k in ("r", "d", "w")}
    if args.samples < 1:
        raise SamplingError(f"--samples must be at least 1, got {args.samples}")
    if args.per_band < 1:
        raise SamplingError(f"--per-band must be at least 1, got {args.per_band}")
    print(f"{PROG}: loading {args.config} (TensorFlow and JAX take a few seconds to import)...",
          file=sys.stderr, flush=True)
    from tinyjax.data import pipeline
    from tinyjax.train.config import apply_overrides, config_to_json, load_config
    from tinyjax.train.run_setup import spec_from_config

    cfg = _base_config(apply_overrides(load_config(args.config), overrides), args.base)
    host_devices_for(int(cfg.population.size))
    base = spec_from_config(cfg, pipeline.get_info(cfg.data).num_classes)
    samples = sample_models(base, targets, args.samples, tolerance=args.tolerance,
                            r_range=ranges["r"], d_range=ranges["d"], w_range=ranges["w"],
                            seed=args.seed)
    plan = json.loads(json.dumps({
        "base": base.to_dict(), "targets": targets, "tolerance": args.tolerance, "ranges": ranges,
        "seed": args.seed, "models": [s.describe() for s in samples],
        "config": json.loads(config_to_json(cfg))}))
    return run_sampling(cfg, Path(args.workdir), base, samples, targets, args.tolerance,
                        args.per_band, plan)


if __name__ == "__main__":
    sys.exit(run_cli(main, prog=PROG))
