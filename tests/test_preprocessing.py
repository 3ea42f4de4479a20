"""The float64 standardisation layer."""

import numpy as np
import tensorflow as tf

from tfvae import preprocessing


def test_standardises_in_float64_and_inverts():
  layer = preprocessing.Standardization(2)
  assert not bool(layer.adapted.numpy())
  layer.set_statistics([1.7e9, 1e6], [0.5, 0.01])
  x = np.array([[1.7e9 + 0.25, 1e6 + 0.02], [1.7e9 - 1.0, np.nan]])
  u = layer(tf.constant(x)).numpy()
  assert u.dtype == np.float64
  np.testing.assert_allclose(u[0], [0.5, 2.0], rtol=1e-6)
  assert np.isnan(u[1, 1])
  # The inverse map in float64 gives the data back exactly.
  np.testing.assert_array_equal(1.7e9 + 0.5 * u[:1, 0], x[:1, 0])
  np.testing.assert_allclose(layer.log_scale(), np.log([0.5, 0.01]))
  assert bool(layer.adapted.numpy())


def test_float32_input_is_accepted():
  layer = preprocessing.Standardization(1)
  layer.set_statistics([2.0], [4.0])
  np.testing.assert_array_equal(layer(tf.constant([[10.0]], tf.float32)), [[2.0]])


def test_atom_parameters_in_either_unit():
  layer = preprocessing.Standardization(2, num_atoms=2)
  layer.set_statistics([10.0, -1.0], [2.0, 0.5],
                       atoms=[[10.0, 14.0], [0.0, np.nan]])
  data = layer.atom_parameters(1e-3, standardized=False)
  standard = layer.atom_parameters(1e-3, standardized=True)
  np.testing.assert_array_equal(data["atom_loc"], [[10.0, 14.0], [0.0, np.nan]])
  np.testing.assert_allclose(data["atom_scale"], [[2e-3, 2e-3], [5e-4, 5e-4]])
  np.testing.assert_allclose(standard["atom_loc"], [[0.0, 2.0], [2.0, np.nan]])
  np.testing.assert_allclose(standard["atom_scale"], np.full([2, 2], 1e-3))
  assert standard["atom_loc"].dtype == tf.float32
