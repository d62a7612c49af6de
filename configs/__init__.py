"""The configs that ship with tinyjax (``tinyjax.configs``; in the repository, ``configs/``).

Each file defines ``get_config(arg=None)`` returning an ``ml_collections.ConfigDict``. Pass one as
``--config configs/FILE.py[:ARG]``: a path on disk wins; otherwise the file of that name that ships
with the package is used, so an installed tinyjax runs them outside a checkout too
(:func:`tinyjax.train.config.config_file`). They are loaded by path, never imported.
"""
