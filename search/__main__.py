"""``python -m tinyjax.search``: a network for a microcontroller's memory (MCUNet's TinyNAS, the
default), or for a MACs target or a budget by TinyNet's Rubik's-cube formula.

Examples::

    python -m tinyjax.search --budget 320kB                     # TinyNAS on the embedded dataset
    python -m tinyjax.search --device stm32h743 --workdir runs/h743   # that board's SRAM and flash
    python -m tinyjax.search --budget 320kB --config configs/search_imagenet.py --workdir W
    python -m tinyjax.search --flops 100M                       # built-in formula (TinyNet-A..E)
    python -m tinyjax.search --flops 100M --out rubik100m.json  # + the spec JSON for train/export
    python -m tinyjax.search --method rubik --budget 256kB      # largest along the curve that fits
    python -m tinyjax.search --refit WORKDIR --flops 50M        # fit WORKDIR/frontier.json first
    python -m tinyjax.search --formula WORKDIR/formula.json --flops 50M
    python -m tinyjax.search --check                            # the formula at TinyNet-A..E MACs
    python -m tinyjax.search --fit-builtin                      # regenerate the built-in formula

Sizes: kB = KiB = 1024 B, MB = 1024² B; counts: M = 10⁶, G = 10⁹ MACs. Library code lives in
:mod:`tinyjax.search.tinynas`, :mod:`tinyjax.search.rubik` and :mod:`tinyjax.search.rubik.memory`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tinyjax.cli import mac_overhead_fraction, patch_cap
from tinyjax.devices import DEFAULT_MAX_MAC_OVERHEAD
from tinyjax.errors import TinyJaxError, run_cli

MAX_ERROR = 0.05   # a target the formula's networks miss by more than this is refused
DEFAULT_WORKDIR = "runs/search"
DEFAULT_CONFIG = "configs/search_embedded.py"
TINYNAS_FLASH = "1MB"   # the flash of a --budget without --flash or --device (STM32F746's)


VALUE_OPTIONS = ("--flops", "--budget", "--flash", "--reserve")


def _join_values(argv: Sequence[str]) -> list[str]:
    """``--flash -1MB`` -> ``--flash=-1MB``: argparse would read ``-1MB`` as an option; joined, the
    value reaches the unit parser, whose one-line error says what is wrong with it."""
    out, it = [], iter(argv)
    for a in it:
        nxt = next(it, None) if a in VALUE_OPTIONS else None
        if nxt is not None and nxt.startswith("-"):
            out.append(f"{a}={nxt}")
        else:
            out.extend([a] if nxt is None else [a, nxt])
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    argv = _join_values(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog="python -m tinyjax.search",
        description="TinyNAS (MCUNet): the most accurate network whose planned memory fits a "
                    "microcontroller (--budget/--device), trained and exported as int8 C; or TinyNet's "
                    "Rubik's-cube formula: r(F) and d(F) from a Gaussian-process fit over log MACs, w "
                    "solved so the counted MACs meet the target (--flops, --method rubik). "
                    "Sizes: kB = 1024 B.")
    p.add_argument("--flops", metavar="MACS", help="MACs target, e.g. 100M, 1.2G, 25e6")
    p.add_argument("--method", choices=["tinynas", "rubik"],
                   help="search under a memory budget: tinynas (default) = MCUNet's two-stage search, "
                        "supernet and evolution, then training and C export; rubik = the largest "
                        "network along the formula's curve that fits")
    p.add_argument("--budget", metavar="SIZE", help="SRAM for the planned arena (input image, "
                   "activations, scratch), e.g. 320kB, 256KiB, 0.5MB (default: the --device's SRAM)")
    p.add_argument("--flash", metavar="SIZE", help="flash for weights and constants, e.g. 1MB "
                   "(default: the --device's flash; else 1MB for tinynas, unchecked for rubik)")
    p.add_argument("--reserve", metavar="SIZE", help="tinynas: SRAM kept free for the application, "
                   "taken off the budget (default 0)")
    p.add_argument("--target", metavar="T", help="kernel target the memory is planned for: cortex-m4, "
                   "cortex-m7, cortex-m55, host (default: the device's core, else cortex-m7)")
    p.add_argument("--device", metavar="NAME", help="a board whose SRAM and flash are the budget "
                   "(explicit --budget/--flash override it): stm32f412, stm32f746, stm32h743")
    p.add_argument("--patch", choices=["auto", "off"], default=None,
                   help="tinynas: 'auto' lets a network fit with patch-based inference (MCUNetV2: the "
                        "first blocks run patch by patch) when its layer-by-layer plan does not; "
                        "'off' (default) plans layer by layer")
    p.add_argument("--max-mac-overhead", type=mac_overhead_fraction, default=None, metavar="F",
                   help="tinynas --patch auto: the most recomputation a patch schedule may add, a "
                        "fraction of the network's MACs (default 0.15)")
    p.add_argument("--finetune", choices=["inherit", "scratch"], default=None,
                   help="tinynas: how the winner is trained: 'inherit' fine-tunes the weights it has "
                        "in the supernet (MCUNet, OFA), 'scratch' trains it from a random init "
                        "(the co-design benchmark's fair comparison) (default: the config's "
                        "finetune_init)")
    p.add_argument("--workdir", metavar="DIR", help="tinynas: work directory, resumed when the same "
                   f"command runs again (default: {DEFAULT_WORKDIR})")
    p.add_argument("--config", metavar="FILE.py[:ARG]", help="tinynas: search config (default: "
                   f"{DEFAULT_CONFIG}); --config.KEY=VALUE overrides one field")
    p.add_argument("--classes", metavar="N", help="classifier outputs of the network (default: the "
                   "formula's base, 1000); w is solved with this classifier counted")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--formula", metavar="FILE", help="a saved formula JSON (default: the built-in one)")
    src.add_argument("--refit", metavar="WORKDIR", help="fit the formula to WORKDIR/frontier.json "
                     "(list of {macs, r, d, ...}); writes WORKDIR/formula.json and formula.png "
                     "(with WORKDIR/samples.json's points when present) and uses it")
    p.add_argument("--out", metavar="FILE", help="write the chosen network's ModelSpec JSON (python -m "
                   "tinyjax.export --spec FILE; python -m tinyjax.train --config.spec=\"$(cat FILE)\")")
    p.add_argument("--check", action="store_true",
                   help="print the formula solved at TinyNet-A..E's MACs next to their published r, d, w")
    p.add_argument("--fit-builtin", action="store_true",
                   help="refit the built-in formula to EfficientNet-B0 and TinyNet-A..E and write it "
                        "into the package (maintainers; needs gpytorch)")
    from tinyjax.train.config import parse_with_overrides

    args, overrides = parse_with_overrides(p, argv)
    args.overrides = overrides
    return args


def _check_modes(args) -> None:
    budget_mode = any(v is not None for v in (args.budget, args.flash, args.target, args.device,
                                              args.reserve))
    if budget_mode and args.method is None and args.flops is None:
        args.method = "tinynas"
    if budget_mode and args.flops is not None:
        raise TinyJaxError("give either --flops (the formula at a MACs target) or a budget "
                           "(--budget/--device), not both")
    if args.method and args.budget is None and args.device is None:
        raise TinyJaxError(f"--method {args.method} needs --budget SIZE or --device NAME")
    if args.method and args.flops is not None:
        raise TinyJaxError(f"give either --flops or --method {args.method} --budget, not both")
    tinynas_only = {"--workdir": args.workdir, "--config": args.config, "--reserve": args.reserve,
                    "--config.KEY": args.overrides or None, "--patch": args.patch,
                    "--max-mac-overhead": args.max_mac_overhead, "--finetune": args.finetune}
    for flag, v in tinynas_only.items():
        if v is not None and args.method != "tinynas":
            raise TinyJaxError(f"{flag} applies to the TinyNAS search (--budget SIZE or --device NAME)")
    if args.method == "tinynas" and any((args.out, args.formula, args.refit, args.check, args.classes)):
        raise TinyJaxError("--out, --formula, --refit, --check and --classes belong to the Rubik's-cube "
                           "formula; the TinyNAS search writes its results into --workdir")
    if args.fit_builtin and (args.formula or args.refit):
        raise TinyJaxError("--fit-builtin fits the built-in points; it takes no --formula or --refit")
    if not (args.flops or args.method or args.refit or args.check or args.fit_builtin):
        raise TinyJaxError("nothing to do: give --flops MACS, --method rubik --budget SIZE, "
                           "--refit WORKDIR, --check or --fit-builtin (see --help)")


def _classes(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise TinyJaxError(f"--classes must be a positive integer, got {text!r}")
    return n


def _write(path, text: str) -> None:
    from tinyjax.files import write_atomic

    try:
        write_atomic(path, text)
    except OSError as e:
        raise TinyJaxError(f"cannot write {path}: {e.strerror or e}") from None
    print(f"wrote {path}")


def _refit(workdir: str):
    from tinyjax.search.rubik.formula import fit_formula, plot_fit, read_points

    wd = Path(workdir)
    if not wd.is_dir():
        raise TinyJaxError(f"--refit {workdir}: not a folder")
    frontier = read_points(wd / "frontier.json")
    samples = read_points(wd / "samples.json") if (wd / "samples.json").is_file() else None
    print(f"fitting the formula to {len(frontier)} frontier points (GPyTorch, about 20 s)...",
          file=sys.stderr)
    formula = fit_formula(frontier, source=f"frontier of {wd}")
    _write(wd / "formula.json", formula.to_json() + "\n")
    try:
        print(f"wrote {plot_fit(formula, wd / 'formula.png', frontier=frontier, samples=samples)}")
    except OSError as e:
        raise TinyJaxError(f"cannot write {wd / 'formula.png'}: {e.strerror or e}") from None
    return formula


def _formula(args):
    from tinyjax.search import rubik

    if args.fit_builtin:
        print("fitting the built-in formula (GPyTorch, about 20 s)...", file=sys.stderr)
        formula = rubik.fit_builtin()
        _write(args.out or rubik.BUILTIN_PATH, formula.to_json() + "\n")
        return formula
    if args.refit:
        return _refit(args.refit)
    return rubik.Formula.load(args.formula) if args.formula else rubik.builtin_formula()


def _budget_inputs(args) -> tuple[int, int | None, str]:
    """(SRAM bytes, flash bytes or None, kernel target) from --budget/--flash/--device/--target."""
    from tinyjax.codegen.targets import get_target
    from tinyjax.devices import DEFAULT_TARGET, get_device
    from tinyjax.units import parse_bytes

    device = get_device(args.device) if args.device else None
    sram = parse_bytes(args.budget) if args.budget is not None else device.sram_bytes
    flash = parse_bytes(args.flash) if args.flash is not None else (device and device.flash_bytes)
    target = args.target or (device.core if device else DEFAULT_TARGET)
    get_target(target)
    return sram, flash, target


def _budget(args, formula, sram: int, flash: int | None, target: str, head: str | None) -> None:
    from tinyjax.search.rubik.formula import solution_lines
    from tinyjax.search.rubik.memory import largest_within
    from tinyjax.units import format_bytes, format_count

    res = largest_within(formula, sram, flash, target)
    best, sol = res.best, res.best.solution
    if head:
        print(head)
    print(f"largest network along the formula's curve within {format_bytes(sram)} of SRAM"
          + (f" and {format_bytes(flash)} of flash" if flash else "") + f" ({target}):")
    print("\n".join(solution_lines(sol)))
    print(f"peak SRAM   {format_bytes(best.peak_sram)} (planned arena)")
    print(f"flash       {format_bytes(best.flash)} (int8 weights and constants)")
    if res.next is None:
        print("the whole curve up to its end fits")
    else:
        n = res.next
        print(f"next along the curve: {format_count(n.solution.macs)} MACs at {n.solution.resolution} px, "
              f"peak {format_bytes(n.peak_sram)}, flash {format_bytes(n.flash)}: does not fit")
    if args.out:
        _write(args.out, sol.spec.to_json() + "\n")


def _tinynas(args) -> int:
    from tinyjax.search.tinynas.run import Budget, run_search
    from tinyjax.train.config import apply_overrides, load_config
    from tinyjax.units import format_bytes, format_count, parse_bytes

    sram, flash, target = _budget_inputs(args)
    if flash is None:
        flash = parse_bytes(TINYNAS_FLASH)
    reserve = parse_bytes(args.reserve) if args.reserve is not None else 0
    if reserve >= sram:
        raise TinyJaxError(f"--reserve {args.reserve} leaves no SRAM of the {format_bytes(sram)} budget "
                           "for the network")
    cap = patch_cap(args)
    budget = Budget(sram - reserve, flash, target, reserve, args.device, patch=cap is not None,
                    max_mac_overhead=DEFAULT_MAX_MAC_OVERHEAD if cap is None else cap)
    config = args.config or DEFAULT_CONFIG
    cfg = apply_overrides(load_config(config), args.overrides)
    if args.finetune is not None:
        with cfg.unlocked():
            cfg.finetune_init = args.finetune
    print(f"TinyNAS under {budget.text()}; config {config}; work directory {args.workdir or DEFAULT_WORKDIR}",
          flush=True)
    s = run_search(cfg, budget, args.workdir or DEFAULT_WORKDIR, log=lambda m: print(m, flush=True))
    print(f"best: {format_count(s['macs'])} MACs, {s['params']:,} parameters, peak SRAM "
          f"{format_bytes(s['peak_sram_bytes'])}, flash {format_bytes(s['flash_bytes'])}; top-1 float "
          f"{s['top1_float']:.4f}, int8 {s['top1_int8']:.4f}; "
          + (f"C bit-exact on {s['c_bit_exact']}/{s['c_images']} images" if s["c_bit_exact"] is not None
             else "C not built (no make/cc)"))
    if "layer_peak_sram_bytes" in s:
        sched = ("none (layer by layer fits)" if s["patch_stage_ops"] is None else
                 f"first {s['patch_stage_ops']} ops in {s['patches_per_side']}x{s['patches_per_side']} "
                 f"patches, +{100 * s['patch_mac_overhead']:.1f}% MACs")
        print(f"patch-based inference: {sched}; layer-by-layer peak "
              f"{format_bytes(s['layer_peak_sram_bytes'])}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _check_modes(args)
    if args.method == "tinynas":
        return _tinynas(args)
    from tinyjax.search.rubik.formula import check_table, solution_lines, solve
    from tinyjax.units import parse_count

    target = parse_count(args.flops) if args.flops is not None else None
    budget = _budget_inputs(args) if args.method else None   # bad input fails before any work
    classes = _classes(args.classes) if args.classes is not None else None
    formula = _formula(args)
    if classes is not None:
        formula = formula.with_classes(classes)
    head = f"formula: {formula.source or 'saved'}"   # printed with the first result, not before errors
    if args.check or args.fit_builtin or not (args.method or target):
        print(head)
        print(check_table(formula))
        head = None
    if args.method:
        _budget(args, formula, *budget, head)
    elif target is not None:
        sol = solve(formula, target)
        if abs(sol.error) > MAX_ERROR:
            raise TinyJaxError(f"--flops {args.flops}: the closest network the formula gives has "
                               f"{sol.macs / 1e6:.2f}M MACs ({100 * sol.error:+.1f}%); targets between "
                               f"about 5M and 800M MACs work")
        if head:
            print(head)
        print("\n".join(solution_lines(sol)))
        if args.out:
            _write(args.out, sol.spec.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="tinyjax.search"))
