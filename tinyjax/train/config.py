"""Python config files (big_vision style) and dotted command-line overrides.

``configs/FILE.py`` defines ``get_config(arg=None) -> ml_collections.ConfigDict``; on the command
line ``--config configs/FILE.py:ARG`` passes ``ARG`` (e.g. ``runlocal`` or ``a``) and
``--config.key.sub=VALUE`` overrides one field, parsed as a Python literal and checked against
the field's existing type.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Sequence
from pathlib import Path

from tinyjax.errors import ConfigFileError


def packaged_configs() -> Path:
    """The folder of the configs that ship with tinyjax (``tinyjax.configs``), found without
    importing it."""
    return Path(importlib.util.find_spec("tinyjax.configs").submodule_search_locations[0])


def config_file(path: str) -> Path:
    """The file of ``--config PATH``: ``PATH`` on disk if it exists, else the config that ships with
    tinyjax under that name (``configs/NAME.py``, ``NAME.py`` or ``NAME``), so an installed package
    runs its own configs outside a checkout."""
    file = Path(path)
    if file.is_file():
        return file
    shipped = packaged_configs()
    name = file.name if file.suffix == ".py" else f"{file.name}.py"
    if file.parent in (Path("."), Path("configs")) and (shipped / name).is_file():
        return shipped / name
    names = ", ".join(f"configs/{f.name}" for f in sorted(shipped.glob("[!_]*.py")))
    raise ConfigFileError(f"config file {path} not found (neither on disk nor among the configs that "
                          f"ship with tinyjax: {names})")


def load_config(path_and_arg: str):
    """Import ``path[:arg]`` (:func:`config_file`) and return ``get_config(arg)``."""
    path, _, arg = path_and_arg.partition(":")
    file = config_file(path)
    spec = importlib.util.spec_from_file_location(f"tinyjax_config_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - a broken user file
        raise ConfigFileError(f"config file {path} failed to load: {type(e).__name__}: {e}") from None
    if not hasattr(module, "get_config"):
        raise ConfigFileError(f"config file {path} has no get_config(arg) function")
    try:
        return module.get_config(arg or None)
    except (ValueError, KeyError) as e:
        raise ConfigFileError(f"{path}:{arg}: {e}") from None


def config_to_json(cfg) -> str:
    """``cfg`` as JSON (sorted keys; tuples become lists), for ``workdir/config.json``."""
    return cfg.to_json_best_effort(sort_keys=True, indent=2) + "\n"


def _tuples(value):
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def config_from_json(text: str, where: str = "config.json"):
    """The ``ConfigDict`` of :func:`config_to_json`'s text (lists back to tuples, as configs
    write them). ``where`` names the file in the error of malformed text."""
    import json

    from ml_collections import ConfigDict

    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigFileError(f"{where} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{where} does not hold a config (a JSON object)")
    return ConfigDict(_tuples(data))


def _parse(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string such as a model name


def parse_with_overrides(parser, argv: Sequence[str] | None):
    """``(args, overrides)``: ``parser``'s arguments, and the ``--config.KEY=VALUE`` items as
    ``KEY=VALUE`` strings for :func:`apply_overrides`; any other unknown argument is a parser error."""
    args, rest = parser.parse_known_args(argv)
    overrides = []
    for item in rest:
        if not item.startswith("--config."):
            parser.error(f"unrecognised argument {item!r} (overrides look like --config.key=value)")
        overrides.append(item[len("--config."):])
    return args, overrides


def apply_overrides(cfg, overrides: Sequence[str]):
    """Apply ``key.sub=VALUE`` overrides (without the ``--config.`` prefix). Unknown keys and
    values of the wrong type raise :class:`ConfigFileError` naming the key."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigFileError(f"override {item!r} needs the form key=value")
        *parents, leaf = key.split(".")
        node = cfg
        for i, p in enumerate(parents):
            if p not in node:
                raise ConfigFileError(f"unknown config key {'.'.join(parents[:i + 1])!r} "
                                      f"(in override {item!r})")
            node = node[p]
        if leaf not in node:
            raise ConfigFileError(f"unknown config key {key!r}; known here: "
                                  f"{', '.join(sorted(node.keys()))}")
        value = _parse(raw)
        old = node[leaf]
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(old, (tuple, list)) and isinstance(value, (tuple, list)):
            value = type(old)(value)
        try:
            node[leaf] = value
        except TypeError:
            kind = type(old).__name__
            article = "an" if kind[0].lower() in "aeiou" else "a"
            raise ConfigFileError(f"config key {key!r} is {article} {kind}; cannot set it to "
                                  f"{raw!r}") from None
    return cfg


def train_defaults():
    """Every training field with its default (the released TinyNet recipe where one applies).

    Configs in ``configs/`` start from this and change what they need; overrides may only set
    fields that exist here.
    """
    from ml_collections import ConfigDict

    from tinyjax.data.pipeline import default_data_config

    c = ConfigDict()
    c.model = "tinynet_e"          # zoo name (checked even when `spec` is set, which wins)
    c.spec = ""                    # a ModelSpec as JSON (ModelSpec.to_json()) or a spec JSON file's path,
                                   # e.g. a search result (python -m tinyjax.search --out FILE)
    c.resolution = 0               # pixels; 0 = the model's own
    c.dropout = -1.0               # classifier dropout; < 0 = the spec's own
    c.drop_path_rate = 0.0
    c.dtype = "float32"            # compute dtype: float32 | bfloat16 (parameters stay float32)
    c.dw_impl = "auto"             # depthwise conv: auto | xla | shifted
    c.data = default_data_config()
    c.batch_size = 128             # global, over all hosts and devices
    c.eval_batch_size = 256
    c.num_epochs = 450.0
    c.total_steps = 0              # > 0 overrides num_epochs
    c.optimizer = "rmsprop_tf"     # rmsprop_tf | sgd_nesterov | adamw
    c.schedule = "exponential"     # exponential | cosine
    c.lr = 0.048 * 128 / 1024      # 0.048 per 1024 images
    c.warmup_epochs = 3.0
    c.decay_rate = 0.97
    c.decay_epochs = 2.4
    c.momentum = 0.9
    c.rms_decay = 0.9
    c.rms_eps = 1e-3
    c.weight_decay = 1e-5
    c.label_smoothing = 0.1
    c.ema_decay = 0.9999           # 0 disables EMA (evaluation then uses the raw weights)
    c.ema_warmup = False           # timm's min(decay, (1+t)/(10+t))
    c.seed = 0                     # weights / dropout; population member k uses seed + k
    c.model_init = ""              # start from these weights: a .msgpack of {"params", "batch_stats"}
                                   # (flax.serialization) of the model's exact shapes, e.g. a searched
                                   # sub-network cut out of its supernet; "" = seed's random init
    c.data_seed = 0                # data order and augmentation
    c.population = ConfigDict({"size": 1, "lr_scales": ()})
    # mesh.population: devices along the population axis; -1 = one member per device group (the
    # population size), 1 = every member on every device as a vmap axis (a CPU, or members that
    # do not split over the devices)
    c.mesh = ConfigDict({"data": -1, "population": -1})
    c.log_every_steps = 50
    c.eval_every_steps = 2000
    c.checkpoint_every_steps = 1000
    c.checkpoint_keep = 2
    c.tensorboard = True
    return c
