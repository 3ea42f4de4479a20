"""Shared fixtures: quiet TensorFlow, fixed seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
  import tf_keras  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(1234)


@pytest.fixture
def rng():
  return np.random.default_rng(0)


def pytest_collection_modifyitems(items):
  """The end-to-end tests (marked slow: they start processes and train)
  first, so that the two workers do not wait on one of them at the end."""
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
