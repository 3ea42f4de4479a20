"""Atomic writes, permissions and the never-delete-what-we-did-not-write rules."""

import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from tfvae import atomic


def mode(path):
  return stat.S_IMODE(os.stat(path).st_mode)


def test_success_renames_into_place_with_the_umasks_mode(tmp_path):
  target = tmp_path / "out" / "1"
  old = os.umask(0o027)
  try:
    with atomic.atomic_directory(target) as temp:
      assert not target.exists()
      assert os.path.basename(temp).startswith(".tmp-tfvae-")
      (open(os.path.join(temp, "f"), "w")).write("x")
  finally:
    os.umask(old)
  assert (target / "f").read_text() == "x"
  assert os.listdir(tmp_path / "out") == ["1"]
  assert mode(target) == 0o750 and mode(target / "f") == 0o640


def test_failure_leaves_nothing(tmp_path):
  with pytest.raises(RuntimeError):
    with atomic.atomic_directory(tmp_path / "1"):
      raise RuntimeError("crash mid-write")
  assert os.listdir(tmp_path) == []


def test_existing_is_refused_unless_the_check_allows_it(tmp_path):
  (tmp_path / "1").mkdir()
  (tmp_path / "1" / "old").write_text("old")
  with pytest.raises(FileExistsError):
    with atomic.atomic_directory(tmp_path / "1"):
      pass

  def refuse(path):
    raise FileExistsError(f"{path} is not ours")

  with pytest.raises(FileExistsError, match="not ours"):
    with atomic.atomic_directory(tmp_path / "1", replace=refuse):
      pass
  assert (tmp_path / "1" / "old").read_text() == "old"
  with atomic.atomic_directory(tmp_path / "1", replace=lambda path: None) as temp:
    open(os.path.join(temp, "new"), "w").close()
    assert (tmp_path / "1" / "old").exists()  # nothing deleted before the end
  assert sorted(os.listdir(tmp_path / "1")) == ["new"]
  assert os.listdir(tmp_path) == ["1"]


def test_only_dead_writers_temporaries_are_removed(tmp_path):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  host = atomic._temp_prefix("x").split("-")[2]  # pylint: disable=protected-access
  stale = tmp_path / f".tmp-tfvae-{host}-{dead.pid}-1-abc"
  alive = tmp_path / f".tmp-tfvae-{host}-{os.getppid()}-1-abc"
  other_host = tmp_path / f".tmp-tfvae-elsewhere-{dead.pid}-1-abc"
  users = tmp_path / ".tmp-1-abc"
  for path in (stale, alive, other_host, users):
    path.mkdir()
  (tmp_path / "2").mkdir()
  removed = atomic.remove_stale_temporaries(tmp_path)
  assert removed == [str(stale)]
  assert sorted(os.listdir(tmp_path)) == sorted(
      [alive.name, other_host.name, users.name, "2"])


def test_atomic_file(tmp_path):
  old = os.umask(0o022)
  try:
    with atomic.atomic_file(tmp_path / "a.csv") as f:
      f.write("1,2\n")
      assert not (tmp_path / "a.csv").exists()
  finally:
    os.umask(old)
  assert (tmp_path / "a.csv").read_text() == "1,2\n"
  assert mode(tmp_path / "a.csv") == 0o644
  with pytest.raises(FileExistsError, match="overwrite=True"):
    with atomic.atomic_file(tmp_path / "a.csv"):
      pass
  with pytest.raises(RuntimeError):
    with atomic.atomic_file(tmp_path / "a.csv", overwrite=True) as f:
      f.write("partial")
      raise RuntimeError
  assert (tmp_path / "a.csv").read_text() == "1,2\n"
  assert os.listdir(tmp_path) == ["a.csv"]


def test_output_checks(tmp_path):
  data = tmp_path / "in.csv"
  data.write_text("1\n")
  with pytest.raises(ValueError, match="is also an input"):
    atomic.check_output_file(data, overwrite=True, protect=[data])
  with pytest.raises(ValueError, match="is a folder"):
    atomic.check_output_file(tmp_path, overwrite=True)
  with pytest.raises(OSError, match="is a file, not a folder"):
    atomic.check_output_file(data / "out.csv")
  if os.geteuid() != 0:  # root writes anywhere
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(OSError, match="not writable"):
      atomic.check_output_file(locked / "out.csv")
  assert atomic.check_writable_folder(tmp_path / "new" / "deeper")
  assert not (tmp_path / "new").exists()  # checking creates nothing


def test_folder_lock_serialises_critical_sections(tmp_path):
  inside = []

  def critical(name):
    with atomic.folder_lock(tmp_path):
      inside.append(("in", name))
      time.sleep(0.05)
      inside.append(("out", name))

  threads = [threading.Thread(target=critical, args=(i,)) for i in range(3)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  for i in range(0, 6, 2):
    assert inside[i][0] == "in" and inside[i + 1] == ("out", inside[i][1])
