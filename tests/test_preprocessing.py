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
                       atoms=[[10.0, 14.0], [0.0, np.nan]],
                       resolution=[0.0, 0.1])
  data = layer.atom_parameters(standardized=False)
  standard = layer.atom_parameters(standardized=True)
  np.testing.assert_array_equal(data["atom_loc"], [[10.0, 14.0], [0.0, np.nan]])
  # Half the resolution (the atom's bin), or float32 rounding where the
  # column has none.
  np.testing.assert_allclose(data["atom_tolerance"],
                             [[1e-6, 1.4e-6], [0.05, 0.05]])
  np.testing.assert_allclose(standard["atom_loc"], [[0.0, 2.0], [2.0, np.nan]])
  np.testing.assert_allclose(standard["atom_tolerance"],
                             [[5e-7, 7e-7], [0.1, 0.1]])
  u = layer(tf.constant([[10.0, 0.04], [np.float32(14.0 + 1e-6), 0.06],
                         [14.0 + 1e-5, np.nan]], tf.float64))
  np.testing.assert_array_equal(layer.atom_index(u), [[1, 1], [2, 0], [0, 0]])
  # A float64 atom matches its float32 rounding.
  layer.set_statistics([0.0, 0.0], [1.0, 1.0], atoms=[[0.1, np.nan]] * 2,
                       resolution=[0.0, 0.0])
  u = layer(tf.constant([[np.float32(0.1), 0.1 + 1e-6]], tf.float64))
  np.testing.assert_array_equal(layer.atom_index(u), [[1, 0]])
