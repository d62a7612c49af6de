"""tinyjax: tiny deep learning on JAX.

The core package imports no framework at import time: ``tinyjax.spec``, ``tinyjax.scaling``,
``tinyjax.zoo`` and ``tinyjax.counting`` are pure Python; ``tinyjax.models`` pulls in JAX/Flax.
Training lives in :mod:`tinyjax.train`, the search in :mod:`tinyjax.search`, deployment in
:mod:`tinyjax.codegen`. Module names from before that layout still import, with a
``DeprecationWarning`` (:mod:`tinyjax._moved`).
"""

from tinyjax import _moved

__version__ = "0.1.0"

_moved.install()
