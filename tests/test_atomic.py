"""Atomic directory writes."""

import os

import pytest

from tfvae import atomic


def test_success_renames_into_place(tmp_path):
  target = tmp_path / "out" / "1"
  with atomic.atomic_directory(target) as temp:
    assert not target.exists()
    assert os.path.basename(temp).startswith(".tmp-")
    (open(os.path.join(temp, "f"), "w")).write("x")
  assert (target / "f").read_text() == "x"
  assert os.listdir(tmp_path / "out") == ["1"]


def test_failure_leaves_nothing(tmp_path):
  with pytest.raises(RuntimeError):
    with atomic.atomic_directory(tmp_path / "1"):
      raise RuntimeError("crash mid-write")
  assert os.listdir(tmp_path) == []


def test_existing_is_refused_then_replaced_on_request(tmp_path):
  (tmp_path / "1").mkdir()
  (tmp_path / "1" / "old").write_text("old")
  with pytest.raises(FileExistsError):
    with atomic.atomic_directory(tmp_path / "1"):
      pass
  with atomic.atomic_directory(tmp_path / "1", overwrite=True) as temp:
    open(os.path.join(temp, "new"), "w").close()
  assert sorted(os.listdir(tmp_path / "1")) == ["new"]
  assert os.listdir(tmp_path) == ["1"]


def test_remove_stale_temporaries(tmp_path):
  (tmp_path / ".tmp-1-abc").mkdir()
  (tmp_path / "2").mkdir()
  removed = atomic.remove_stale_temporaries(tmp_path)
  assert [os.path.basename(p) for p in removed] == [".tmp-1-abc"]
  assert os.listdir(tmp_path) == ["2"]


def test_atomic_file(tmp_path):
  with atomic.atomic_file(tmp_path / "a.csv") as f:
    f.write("1,2\n")
    assert not (tmp_path / "a.csv").exists()
  assert (tmp_path / "a.csv").read_text() == "1,2\n"
  with pytest.raises(FileExistsError):
    with atomic.atomic_file(tmp_path / "a.csv"):
      pass
  with pytest.raises(RuntimeError):
    with atomic.atomic_file(tmp_path / "a.csv", overwrite=True) as f:
      f.write("partial")
      raise RuntimeError
  assert (tmp_path / "a.csv").read_text() == "1,2\n"
  assert os.listdir(tmp_path) == ["a.csv"]
