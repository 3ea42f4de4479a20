"""TF Serving's layout read without TensorFlow: versions, parts, metadata."""

import json
import subprocess
import sys

import pytest

from tfvae import versions


def _version(base, number, part=None):
  path = base / str(number)
  (path / "assets.extra").mkdir(parents=True)
  (path / "saved_model.pb").write_bytes(b"")
  if part is not None:
    (path / "assets.extra" / versions.METADATA_FILE).write_text(
        json.dumps({"part": part, "input_dim": 3}))
  return path


def test_versions_are_the_integers_tf_serving_reads(tmp_path):
  for number in (1, 12, 2**63 - 1, 2**63, 10**20):
    (tmp_path / str(number)).mkdir()
  for name in ("0", "x7", "-3", ".tmp-tfvae-1"):
    (tmp_path / name).mkdir()
  (tmp_path / "5").write_text("a file, not a version")
  assert versions.integer_versions(tmp_path) == [1, 12, 2**63 - 1]
  assert versions.latest_version_path(tmp_path) == str(tmp_path / str(2**63 - 1))
  with pytest.raises(ValueError, match="no integer version folder"):
    versions.latest_version_path(tmp_path / "none")


def test_parts_and_metadata(tmp_path):
  encoder = _version(tmp_path / "encoder", 2, "encoder")
  decoder = _version(tmp_path / "decoder", 1, "decoder")
  assert versions.version_path(tmp_path / "encoder") == str(encoder)
  assert versions.version_path(encoder) == str(encoder)
  assert versions.check_part(encoder, "encoder")["input_dim"] == 3
  with pytest.raises(ValueError, match="is tfvae's decoder, not its encoder"):
    versions.check_part(decoder, "encoder")
  # A SavedModel written otherwise has no metadata and passes.
  foreign = _version(tmp_path / "other", 1)
  assert versions.check_part(foreign, "encoder") == {}
  (foreign / "assets.extra" / versions.METADATA_FILE).write_text("[1, 2")
  assert versions.read_metadata(foreign) == {}


def test_a_version_is_replaced_only_with_overwrite_and_only_if_tfvae_wrote_it(
    tmp_path):
  _version(tmp_path / "encoder", 1, "encoder")
  _version(tmp_path / "decoder", 1)  # not tfvae's
  versions.check_version_free(tmp_path, 2)
  with pytest.raises(FileExistsError, match="already exists; pass overwrite"):
    versions.check_version_free(tmp_path, 1)
  versions.check_version_free(tmp_path, 1, overwrite=True, parts=("encoder",))
  with pytest.raises(FileExistsError, match="decoder/1 exists but is not a "
                     "tfvae export"):
    versions.check_version_free(tmp_path, 1, overwrite=True)


def test_reading_the_layout_does_not_import_tensorflow():
  code = ("import sys\nfrom tfvae import versions\n"
          "assert 'tensorflow' not in sys.modules\n")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
