"""Shared by the benchmark scripts: running cells in worker processes."""

import concurrent.futures
import json
import multiprocessing


def run_cells(cells, run_cell, jobs, results_path, initializer=None,
              initargs=(), max_tasks_per_child=None):
  """Runs `run_cell(cell)` for each cell in `jobs` spawned processes and
  appends each result to the JSON-lines file `results_path` as it comes.

  Yields (cell, result) in completion order; a cell that raises is printed
  and skipped (the others go on).
  """
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(
      jobs, mp_context=context, initializer=initializer, initargs=initargs,
      max_tasks_per_child=max_tasks_per_child) as pool:
    futures = {pool.submit(run_cell, cell): cell for cell in cells}
    for future in concurrent.futures.as_completed(futures):
      cell = futures[future]
      try:
        result = future.result()
      except Exception as error:  # pylint: disable=broad-except
        print(f"  FAILED {cell}: {type(error).__name__}: {error}", flush=True)
        continue
      with open(results_path, "a") as out:
        out.write(json.dumps(result) + "\n")
      yield cell, result


def worker_result(script, *args):
  """Runs `python script --worker *args` in a fresh process and returns the
  JSON object on its last line of output; exits with the worker's error
  output if it fails."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  out = subprocess.run([sys.executable, script, "--worker", *map(str, args)],
                       capture_output=True, text=True, check=False)
  if out.returncode:
    print(out.stderr[-3000:])
    raise SystemExit(f"worker {' '.join(map(str, args))} failed")
  return json.loads(out.stdout.splitlines()[-1])
