"""tinyjax: tiny deep learning on JAX.

The core package imports no framework at import time: ``tinyjax.spec``, ``tinyjax.scaling``,
``tinyjax.zoo`` and ``tinyjax.counting`` are pure Python; ``tinyjax.models`` pulls in JAX/Flax.
"""

__version__ = "0.1.0"
