"""Encoding files with an exported encoder."""

import os
import shutil

import numpy as np
import pytest

from tfvae import export
from tfvae import serving
from tests.helpers import fitted_model

# Its tests share trained models: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("serving")


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
  """One trained and exported model shared by this module's tests (which
  read the export and never write into it)."""
  rng = np.random.default_rng(0)
  x = rng.normal(20, 5, size=(300, 3)) + [0, 1e6, 1.7e9]
  model = fitted_model(x, epochs=1, latent_dim=2)
  folder = tmp_path_factory.mktemp("serving") / "m"
  export.export_model(model, folder)
  return model, x, str(folder / "encoder")


def test_encode_file_streams_and_matches_the_model(exported, tmp_path):
  model, x, encoder_path = exported
  x = x.copy()
  x[5, 1] = np.nan  # a gap: encoded from the observed values
  data_path = tmp_path / "in.csv"
  np.savetxt(data_path, x, delimiter=",", header="a,b,c", comments="",
             fmt="%.17g")
  rows, version = serving.encode_file(encoder_path, data_path,
                                      tmp_path / "out.csv", batch_size=64)
  assert rows == 300 and version.endswith("1")
  lines = (tmp_path / "out.csv").read_text().splitlines()
  assert lines[0] == "z_mean_0,z_mean_1,z_stddev_0,z_stddev_1"
  values = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
  posterior = model.posterior_parameters(x)
  np.testing.assert_allclose(values[:, :2], posterior["loc"], rtol=1e-6)
  np.testing.assert_allclose(values[:, 2:], posterior["scale"], rtol=1e-6)


def test_newest_version_is_used(exported, tmp_path):
  model, x, encoder_path = exported
  shutil.copytree(os.path.dirname(encoder_path), tmp_path / "m")
  export.export_model(model, tmp_path / "m")
  np.save(tmp_path / "in.npy", x[:5])
  _, version = serving.encode_file(tmp_path / "m" / "encoder",
                                   tmp_path / "in.npy", tmp_path / "o.csv")
  assert version.endswith("2")


def test_width_mismatch_and_bad_cells_leave_no_output(exported, tmp_path):
  _, _, encoder_path = exported
  (tmp_path / "wide.csv").write_text("1,2,3,4\n5,6,7,8\n")
  with pytest.raises(ValueError, match="4 columns, but the model expects 3"):
    serving.encode_file(encoder_path, tmp_path / "wide.csv", tmp_path / "o.csv")
  (tmp_path / "bad.csv").write_text("1.5,2,3\n" * 100 + "1,x,3\n")
  with pytest.raises(ValueError, match="row 101, column 2: 'x'"):
    serving.encode_file(encoder_path, tmp_path / "bad.csv", tmp_path / "o.csv",
                        batch_size=16)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "wide.csv"]


def test_existing_output_and_missing_model(exported, tmp_path):
  _, x, encoder_path = exported
  np.save(tmp_path / "in.npy", x[:3])
  (tmp_path / "o.csv").write_text("keep me")
  with pytest.raises(FileExistsError):
    serving.encode_file(encoder_path, tmp_path / "in.npy", tmp_path / "o.csv")
  assert (tmp_path / "o.csv").read_text() == "keep me"
  with pytest.raises(ValueError, match="no integer version folder"):
    serving.encode_file(tmp_path, tmp_path / "in.npy", tmp_path / "p.csv")
