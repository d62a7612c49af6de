import jax
import numpy as np
from tiny import batches, step_parts

from tinyjax.train import steps


def test_population_of_4_equals_4_separate_runs():
    """K=4 members (seeds 0..3, learning-rate scales 1, 0.5, 2, 1) trained in one vmapped program
    end where 4 separate runs end: same losses, same weights (float32 round-off only)."""
    model, tx, schedule, step = step_parts()
    seeds, scales = [0, 1, 2, 3], [1.0, 0.5, 2.0, 1.0]
    data = batches(4)
    plain = jax.jit(step)
    separate_losses, separate_params = [], []
    for seed, scale in zip(seeds, scales):
        state = steps.create_train_state(model, tx, seed, scale)
        losses = []
        for b in data:
            state, m = plain(state, b)
            losses.append(float(m["loss_sum"] / m["count"]))
        separate_losses.append(losses)
        separate_params.append(state.params)

    population = jax.jit(jax.vmap(step, in_axes=(0, None)))
    state = steps.stack_states([steps.create_train_state(model, tx, s, c)
                                  for s, c in zip(seeds, scales)])
    pop_losses = []
    for b in data:
        state, m = population(state, b)
        pop_losses.append(np.asarray(m["loss_sum"] / m["count"]))
    np.testing.assert_allclose(np.stack(pop_losses, 1), np.asarray(separate_losses), rtol=2e-5)
    for k in range(4):
        for a, b in zip(jax.tree_util.tree_leaves(steps.unstack_state(state, k).params),
                        jax.tree_util.tree_leaves(separate_params[k])):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the members really differ (different seeds and rates)
    assert len({round(x[-1], 4) for x in separate_losses}) == 4
