"""Fixtures of the scenario tests (helpers live in smallrun.py)."""
from pathlib import Path

import pytest

from smallrun import make_fashion_mnist


@pytest.fixture(scope="session")
def fmnist_dir(tmp_path_factory) -> Path:
    return make_fashion_mnist(tmp_path_factory.mktemp("fmnist"))
