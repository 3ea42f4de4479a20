"""Encoding files with an exported encoder."""

import numpy as np
import pytest

import tfvae
from tfvae import export
from tfvae import serving


@pytest.fixture
def exported(tmp_path):
  rng = np.random.default_rng(0)
  x = rng.normal(20, 5, size=(300, 3)).astype(np.float32)
  model = tfvae.VAE(input_dim=3, latent_dim=2)
  model.adapt(x)
  export.export(model, tmp_path / "m")
  return model, x, str(tmp_path / "m" / "encoder")


def test_encode_file_streams_and_matches_the_model(exported, tmp_path):
  model, x, encoder_path = exported
  data_path = tmp_path / "in.csv"
  np.savetxt(data_path, x, delimiter=",", header="a,b,c", comments="")
  rows, version = serving.encode_file(encoder_path, data_path,
                                      tmp_path / "out.csv", batch_size=64)
  assert rows == 300 and version.endswith("1")
  lines = (tmp_path / "out.csv").read_text().splitlines()
  assert lines[0] == "z_mean_0,z_mean_1,z_stddev_0,z_stddev_1"
  values = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
  posterior = model.encode(x)
  np.testing.assert_allclose(values[:, :2], posterior.mean(), atol=1e-5)
  np.testing.assert_allclose(values[:, 2:], posterior.stddev(), atol=1e-5)


def test_newest_version_is_used(exported, tmp_path):
  model, x, encoder_path = exported
  export.export(tfvae.VAE(input_dim=3, latent_dim=2), tmp_path / "m")
  np.save(tmp_path / "in.npy", x[:5])
  _, version = serving.encode_file(encoder_path, tmp_path / "in.npy",
                                   tmp_path / "o.csv")
  assert version.endswith("2")


def test_width_mismatch_and_bad_cells_leave_no_output(exported, tmp_path):
  _, _, encoder_path = exported
  (tmp_path / "wide.csv").write_text("1,2,3,4\n5,6,7,8\n")
  with pytest.raises(ValueError, match="4 columns, but the model expects 3"):
    serving.encode_file(encoder_path, tmp_path / "wide.csv", tmp_path / "o.csv")
  (tmp_path / "bad.csv").write_text("1,2,3\n" * 100 + "1,x,3\n")
  with pytest.raises(ValueError, match="row 101, column 2: 'x'"):
    serving.encode_file(encoder_path, tmp_path / "bad.csv", tmp_path / "o.csv",
                        batch_size=16)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "m", "wide.csv"]


def test_existing_output_and_missing_model(exported, tmp_path):
  _, x, encoder_path = exported
  np.save(tmp_path / "in.npy", x[:3])
  (tmp_path / "o.csv").write_text("keep me")
  with pytest.raises(FileExistsError):
    serving.encode_file(encoder_path, tmp_path / "in.npy", tmp_path / "o.csv")
  assert (tmp_path / "o.csv").read_text() == "keep me"
  with pytest.raises(ValueError, match="no integer version folder"):
    serving.encode_file(tmp_path, tmp_path / "in.npy", tmp_path / "p.csv")
