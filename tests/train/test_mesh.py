"""One device vs 8 simulated CPU devices: the same losses within float tolerance."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
import jax, numpy as np
sys.path.insert(0, sys.argv[1])
from tiny import batches, step_parts
from tinyjax.train import sharding, steps
assert len(jax.devices()) == 8, jax.devices()
model, tx, schedule, _ = step_parts()
from ml_collections import ConfigDict
cfg = ConfigDict({"label_smoothing": 0.1, "ema_decay": 0.99, "ema_warmup": True})
out = {}
for name, mesh in {"one": sharding.make_mesh(1, 1), "eight": sharding.make_mesh(1, 8)}.items():
    state = steps.create_train_state(model, tx, 0)
    prog = sharding.compile_program(cfg, model, tx, schedule, 10, mesh, state, 1)
    state = jax.device_put(state, prog.shardings.state)
    losses = []
    for b in batches(5, batch=32):
        state, m = prog.train(state, sharding.global_batch(b, prog.shardings.batch))
        losses.append(float(m["loss_sum"] / m["count"]))
    out[name] = losses
    out[name + "_sharding"] = str(state.params["stem"]["conv"]["kernel"].sharding.spec)
    out[name + "_devices"] = len(m["count"].sharding.device_set)
    out[name + "_bn"] = np.asarray(state.batch_stats["stem"]["bn"]["mean"]).tolist()
print(json.dumps(out))
"""


def test_one_and_eight_devices_give_the_same_losses():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    here = str(Path(__file__).parent)
    r = subprocess.run([sys.executable, "-c", SCRIPT, here], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["one_devices"] == 1 and out["eight_devices"] == 8
    for a, b in zip(out["one"], out["eight"]):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), (out["one"], out["eight"])
    # BatchNorm statistics come from the global batch, not per device shard
    import numpy as np
    np.testing.assert_allclose(out["one_bn"], out["eight_bn"], rtol=1e-4, atol=1e-6)
