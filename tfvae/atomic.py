"""Writing results safely: atomically, with the umask's permissions, and never
over something tfvae did not write.

A reader (TF Serving, a resumed job, another user's process) never sees a
half-written file or folder: content is built under a hidden temporary name
beside the target and renamed into place when complete. Temporaries are
named `.tmp-tfvae-<host>-<pid>-...`, so a later run removes the ones left by
a killed process of its own machine, and never those of a writer that is
still running.

`tempfile.mkdtemp` and `mkstemp` create modes 0700 and 0600 whatever the
umask; results here get the mode the user's umask gives new files and
folders (TF Serving often runs as another user).
"""

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import tempfile

TEMP_PREFIX = ".tmp-tfvae-"


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


def default_file_mode():
  """The mode a new file gets under the current umask (e.g. 0644)."""
  return 0o666 & ~_umask()


def default_dir_mode():
  """The mode a new folder gets under the current umask (e.g. 0755)."""
  return 0o777 & ~_umask()


def _temp_prefix(name):
  host = socket.gethostname().replace("-", "_") or "host"
  return f"{TEMP_PREFIX}{host}-{os.getpid()}-{name}-"


def _writer_is_gone(temp_name):
  """Whether the temporary `temp_name` was left by a dead process here."""
  parts = temp_name[len(TEMP_PREFIX):].split("-", 2)
  if len(parts) < 3 or not parts[1].isdigit():
    return False
  host = socket.gethostname().replace("-", "_") or "host"
  if parts[0] != host:
    return False  # another machine's writer: it may be running
  pid = int(parts[1])
  if pid == os.getpid():
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except PermissionError:
    return False  # alive, someone else's
  return False


def remove_stale_temporaries(parent):
  """Deletes temporaries left in `parent` by killed tfvae writers.

  Only `.tmp-tfvae-*` entries of this machine whose process is gone are
  removed: nothing of the user's, nothing of a running writer.

  Args:
    parent: a folder that tfvae writes into.

  Returns:
    The list of removed paths.
  """
  removed = []
  if not os.path.isdir(parent):
    return removed
  for name in os.listdir(parent):
    path = os.path.join(parent, name)
    if name.startswith(TEMP_PREFIX) and _writer_is_gone(name):
      if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        with contextlib.suppress(OSError):
          os.remove(path)
      removed.append(path)
  return removed


def _chmod_tree(path):
  """Gives `path` and everything below it the umask's default modes."""
  dir_mode, file_mode = default_dir_mode(), default_file_mode()
  os.chmod(path, dir_mode)
  for root, dirs, files in os.walk(path):
    for name in dirs:
      os.chmod(os.path.join(root, name), dir_mode)
    for name in files:
      full = os.path.join(root, name)
      if not os.path.islink(full):
        os.chmod(full, file_mode)


def make_parent(path):
  """Creates the folder that will hold `path`, or raises a one-line error."""
  parent = os.path.dirname(os.path.abspath(os.fspath(path)))
  try:
    os.makedirs(parent, exist_ok=True)
  except FileExistsError:
    raise OSError(f"{parent} exists and is not a folder") from None
  except PermissionError:
    raise OSError(f"cannot create {parent}: permission denied") from None
  return parent


def make_temp_dir(parent, name):
  """A new hidden temporary folder in `parent`, for `finish_directory`."""
  return tempfile.mkdtemp(prefix=_temp_prefix(name), dir=parent)


def finish_directory(temp_path, final_path):
  """Renames a completed temporary folder to `final_path`.

  The tree gets the umask's modes first. An existing `final_path` (which
  the caller has checked may be replaced) is moved aside and deleted only
  after the new folder is in place.
  """
  _chmod_tree(temp_path)
  if os.path.lexists(final_path):
    retired = make_temp_dir(os.path.dirname(final_path), "old")
    os.rename(final_path, os.path.join(retired, "old"))
    os.rename(temp_path, final_path)
    shutil.rmtree(retired, ignore_errors=True)
  else:
    os.rename(temp_path, final_path)


def discard_directory(temp_path):
  """Deletes an unfinished temporary folder."""
  shutil.rmtree(temp_path, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final_path, replace=None):
  """Yields a temporary folder that becomes `final_path` on success.

  Args:
    final_path: the folder to create.
    replace: None refuses an existing `final_path` (before any work is
      done); otherwise a callable(path) that raises unless that existing
      folder may be replaced. The old folder is removed only after the new
      one is complete.

  Yields:
    The temporary folder's path, beside `final_path` (same file system, so
    the rename is atomic).

  Raises:
    FileExistsError: `final_path` exists and may not be replaced.
  """
  final_path = os.path.abspath(os.fspath(final_path))
  if os.path.lexists(final_path):
    if replace is None:
      raise FileExistsError(
          f"{final_path} already exists; refusing to overwrite it")
    replace(final_path)
  parent = make_parent(final_path)
  remove_stale_temporaries(parent)
  temp_path = make_temp_dir(parent, os.path.basename(final_path))
  try:
    yield temp_path
    finish_directory(temp_path, final_path)
  except BaseException:
    discard_directory(temp_path)
    raise


@contextlib.contextmanager
def atomic_path(final_path, suffix=""):
  """Yields a temporary file path that replaces `final_path` on success.

  For writers that take a path rather than an open file (Keras'
  `model.save`). The caller has checked that `final_path` may be replaced;
  the temporary sits beside it (same file system, so the rename is
  atomic) and gets the umask's file mode.

  Args:
    final_path: the file to create or replace.
    suffix: the temporary's ending (Keras wants ".keras").

  Yields:
    The temporary path (an empty file).
  """
  final_path = os.path.abspath(os.fspath(final_path))
  parent = make_parent(final_path)
  remove_stale_temporaries(parent)
  handle, temp_path = tempfile.mkstemp(
      prefix=_temp_prefix(os.path.basename(final_path)), suffix=suffix,
      dir=parent)
  os.close(handle)
  try:
    yield temp_path
    os.chmod(temp_path, default_file_mode())
    os.replace(temp_path, final_path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(temp_path)
    raise


@contextlib.contextmanager
def atomic_file(final_path, overwrite=False, mode="w", newline="",
                protect=()):
  """Yields an open temporary file that becomes `final_path` on success.

  Args:
    final_path: the file to create.
    overwrite: replace an existing regular file; otherwise an existing one
      is an error, raised before anything is written.
    mode, newline: as for `open`.
    protect: paths (e.g. the input files) that must never be replaced.

  Yields:
    The open file object.

  Raises:
    FileExistsError: `final_path` exists and `overwrite` is False.
    ValueError: `final_path` is a folder or one of `protect`.
  """
  final_path = check_output_file(final_path, overwrite, protect)
  with atomic_path(final_path) as temp_path:
    with open(temp_path, mode, newline=newline) as f:
      yield f


def check_output_file(path, overwrite=False, protect=()):
  """Checks that `path` can be written as a new or replaced output file.

  Args:
    path: the output file.
    overwrite: whether an existing regular file may be replaced.
    protect: paths that must never be replaced (the command's inputs).

  Returns:
    The absolute path.

  Raises:
    FileExistsError: it exists and `overwrite` is False.
    ValueError: it is a folder, or the same file as one of `protect`.
    OSError: its folder cannot be created or written.
  """
  path = os.path.abspath(os.fspath(path))
  for other in protect:
    if other is not None and os.path.exists(path) and os.path.exists(other) and (
        os.path.samefile(path, other)):
      raise ValueError(f"{path} is also an input; write the output elsewhere")
  if os.path.isdir(path):
    raise ValueError(f"{path} is a folder; expected a file name")
  if os.path.lexists(path) and not overwrite:
    raise FileExistsError(
        f"{path} already exists; pass overwrite=True to replace it")
  check_writable_folder(os.path.dirname(path))
  return path


def check_writable_folder(folder):
  """Raises `OSError` unless `folder` exists (or can be created) and is
  writable; creates nothing."""
  folder = os.path.abspath(os.fspath(folder))
  probe = folder
  while not os.path.lexists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      break
    probe = parent
  if not os.path.isdir(probe):
    raise OSError(f"cannot write under {folder}: {probe} is a file, not a "
                  "folder")
  if not os.access(probe, os.W_OK | os.X_OK):
    raise OSError(f"cannot write under {folder}: {probe} is not writable "
                  "(permission denied)")
  return folder


@contextlib.contextmanager
def folder_lock(folder):
  """Holds an exclusive lock on `folder` (an flock on `folder/.tfvae.lock`).

  Used to make choosing a new version and renaming it into place one step:
  two writers in the same folder then end with two versions.
  """
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, ".tfvae.lock")
  fd = os.open(path, os.O_RDWR | os.O_CREAT, default_file_mode())
  try:
    while True:
      try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        break
      except OSError as error:  # interrupted by a signal: try again
        if error.errno != errno.EINTR:
          raise
    yield
  finally:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
