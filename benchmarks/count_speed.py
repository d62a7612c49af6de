"""Counting params and MACs from a spec (tinyjax) vs building the timm model and running
PyTorch's FlopCounterMode (the reference), side by side, for the timm zoo entries.

    python benchmarks/count_speed.py

Prints per model: tinyjax's median time per spec (µs), timm's (ms), the speed ratio, and checks
that the two give the same numbers. Needs the test extras (timm, torch).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import import_timm  # noqa: E402  (the torchvision work-around)

from tinyjax.counting import count  # noqa: E402
from tinyjax.zoo import TIMM_MODELS, get_spec  # noqa: E402


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    timm = import_timm()
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(2)

    def timm_count(name: str, resolution: int):
        model = timm.create_model(name).eval()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(torch.zeros(1, 3, resolution, resolution))
        return sum(p.numel() for p in model.parameters()), fc.get_total_flops() // 2

    print(f"{'model':<18}{'tinyjax µs':>12}{'timm ms':>10}{'speed-up':>10}  same numbers")
    for name in TIMM_MODELS:
        spec = get_spec(name)
        ours = median_seconds(lambda spec=spec: count(spec), 200)
        ref = median_seconds(lambda name=name, spec=spec: timm_count(name, spec.resolution), 3)
        stats = count(spec)
        same = (stats.params, stats.macs) == timm_count(name, spec.resolution)
        print(f"{name:<18}{ours * 1e6:>12.0f}{ref * 1e3:>10.0f}{ref / ours:>9.0f}x  {same}")


if __name__ == "__main__":
    main()
