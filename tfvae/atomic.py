"""Atomic directory writes: build under a temporary name, then rename.

A reader (TF Serving, a resumed job) never sees a half-written directory:
until the final `os.rename` the content lives in a hidden sibling whose name
is not an integer, which TF Serving ignores.
"""

import contextlib
import os
import shutil
import tempfile

_TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_directory(final_path, overwrite=False):
  """Yields a temporary directory that becomes `final_path` on success.

  Args:
    final_path: the directory to create.
    overwrite: replace an existing `final_path`. Otherwise an existing one
      is an error, raised before any work is done.

  Yields:
    The temporary directory's path, beside `final_path` (same file system,
    so the rename is atomic).

  Raises:
    FileExistsError: `final_path` exists and `overwrite` is False.
  """
  final_path = os.path.abspath(os.fspath(final_path))
  if os.path.exists(final_path) and not overwrite:
    raise FileExistsError(
        f"{final_path} already exists; refusing to overwrite it")
  parent = os.path.dirname(final_path)
  os.makedirs(parent, exist_ok=True)
  temp_path = tempfile.mkdtemp(
      prefix=f"{_TEMP_PREFIX}{os.path.basename(final_path)}-", dir=parent)
  try:
    yield temp_path
    if os.path.exists(final_path):  # overwrite=True
      retired = tempfile.mkdtemp(prefix=_TEMP_PREFIX + "old-", dir=parent)
      os.rename(final_path, os.path.join(retired, "old"))
      os.rename(temp_path, final_path)
      shutil.rmtree(retired, ignore_errors=True)
    else:
      os.rename(temp_path, final_path)
  except BaseException:
    shutil.rmtree(temp_path, ignore_errors=True)
    raise


def remove_stale_temporaries(parent):
  """Deletes temporary directories left in `parent` by killed writers.

  Args:
    parent: a directory that `atomic_directory` writes into.

  Returns:
    The list of removed paths.
  """
  removed = []
  if not os.path.isdir(parent):
    return removed
  for name in os.listdir(parent):
    path = os.path.join(parent, name)
    if name.startswith(_TEMP_PREFIX) and os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
      removed.append(path)
  return removed


@contextlib.contextmanager
def atomic_file(final_path, overwrite=False, mode="w", newline=""):
  """Yields an open temporary file that becomes `final_path` on success.

  Args:
    final_path: the file to create.
    overwrite: replace an existing file; otherwise that is an error, raised
      before anything is written.
    mode, newline: as for `open`.

  Yields:
    The open file object.

  Raises:
    FileExistsError: `final_path` exists and `overwrite` is False.
  """
  final_path = os.path.abspath(os.fspath(final_path))
  if os.path.exists(final_path) and not overwrite:
    raise FileExistsError(f"{final_path} already exists; pass --overwrite")
  parent = os.path.dirname(final_path)
  os.makedirs(parent, exist_ok=True)
  handle, temp_path = tempfile.mkstemp(
      prefix=f"{_TEMP_PREFIX}{os.path.basename(final_path)}-", dir=parent)
  try:
    with os.fdopen(handle, mode, newline=newline) as f:
      yield f
    os.replace(temp_path, final_path)
  except BaseException:
    if os.path.exists(temp_path):
      os.remove(temp_path)
    raise
