"""Fixtures of the training tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    data = os.environ.get("TINYJAX_DATA_DIR") or str(tmp_path_factory.mktemp("tfds"))
    return dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", TINYJAX_DATA_DIR=data,
                JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
