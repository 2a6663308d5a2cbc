"""Execute the notebooks with papermill.

    python scripts/run_notebooks.py smoke            # every notebook at the smoke scale (as the
                                                     # book's scale: BISLS_BOOK_SCALE=smoke),
                                                     # recompute=True, into .scratch/smoke/, then
                                                     # checks that pages, figures and scorecard
                                                     # all say smoke
    python scripts/run_notebooks.py results [--scale paper] [--device auto] [NAME ...]
                                                     # fill results/<scale>/ (default: the book's
                                                     # scale; resumable: finished runs are cached),
                                                     # executed copies into .scratch/results/
    python scripts/run_notebooks.py results --reading p14=0.1 NAME ...
                                                     # the same pages under another reading of the
                                                     # paper's open choices (make readings)
    python scripts/run_notebooks.py results --scale paper --plan [NAME ...]
                                                     # list the runs that are missing, with an
                                                     # estimate of their time; computes none
    python scripts/run_notebooks.py execute [NAME ...]
                                                     # re-execute the committed notebooks at the
                                                     # book's scale (after new results): each into
                                                     # .scratch/execute/, then over the committed
                                                     # one once it succeeded

Notebooks run from the ``notebooks/`` folder, as nbval and Jupyter Book run them
(``$BISLS_NOTEBOOKS_DIR`` names another folder: the tests run stand-in notebooks so).
Every notebook's ``scale`` parameter defaults to ``None``, the book's scale
(``bisls_core.experiments.book_scale``: ``$BISLS_BOOK_SCALE``, else ``cpu``), so
``BISLS_BOOK_SCALE=paper`` (``make notebooks SCALE=paper``) re-executes every page at
that scale.

Who writes the book: only ``results`` (``make results``, ``make paper``) and ``execute``
(``make notebooks``) set ``BISLS_WRITE_BOOK=1`` in their notebooks' environment, the
setting under which the core writes into the committed ``results/``, ``figures/`` and
claim records (at the book's scale; see ``bisls_core.cache.results_dir`` and
``plotting.figures_dir``). ``smoke``, ``results --plan`` and ``results --scale smoke``
never set it (and drop a value the caller exported), so they write under
``.scratch/``, which git ignores. ``results`` keeps its cache in ``results/<scale>/`` at
every scale but smoke (``$BISLS_RESULTS``: hours of GPU work are not scratch: commit
them, then build the book at that scale), while its figures follow the rule.

Executor: ``results`` runs two pages at a time (``-j``), each with two worker processes:
``BISLS_EXECUTOR=process:2`` unless the caller set ``BISLS_EXECUTOR`` (kept as given).

Progress: ``results`` and ``execute`` give each page a progress file,
``.scratch/progress/<page>.jsonl`` (``$BISLS_PROGRESS``, emptied at the start), to which
the core appends one JSON line per finished run. While the pages run, a thread reads
these files every few seconds and prints one line per finished run: the page, the
run's label and seed, its seconds, ``done/total`` runs of its grid, and an estimate of
the time that grid has left (mean seconds per finished run x runs left / workers).

``execute`` never leaves a half-executed page: papermill writes into
``.scratch/execute/<page>.ipynb``; once it succeeded, its metadata is cleaned
(:func:`clean_metadata`) and it replaces the committed page, unless the two differ only
by PNG images that show the same figure (``bisls_core.plotting.same_png``: same size
and metadata, every pixel within one level), in which case the committed file is kept
byte for byte (:func:`same_notebook`).

Timings: a ``results`` run of every page at the book's scale (not ``--plan``, not
smoke) that succeeded writes its wall time, date, CPU model, cores, executor and pages
into ``results/<scale>/timings/make_results.json`` (atomically, sorted keys).

Signals: each papermill runs in its own session (process group), as does the kernel it
starts (jupyter_client does so). On SIGTERM or SIGINT this script sends the signal to
the process group of every papermill, kernel and worker it started, waits up to
:data:`GRACE_S` seconds, sends SIGKILL to those still alive, and exits with
128 + the signal's number. Ctrl-C in a terminal (SIGINT to make's process group) and
SIGTERM to ``make`` (which passes it to the recipe it runs) both reach this script.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_book_scale  # noqa: E402
import timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".scratch"
PROGRESS = SCRATCH / "progress"
BIN = Path(sys.executable).parent
#: The executor of ``results`` unless ``$BISLS_EXECUTOR`` is set (two pages at a time,
#: two worker processes each).
DEFAULT_EXECUTOR = "process:2"
#: Seconds between a forwarded signal and SIGKILL to the processes still alive.
GRACE_S = 5.0
#: Seconds between two reads of the progress files.
POLL_S = 3.0


def notebook_dir() -> Path:
    """The folder of the notebooks: ``$BISLS_NOTEBOOKS_DIR``, else ``notebooks/``."""
    return Path(os.environ.get("BISLS_NOTEBOOKS_DIR") or ROOT / "notebooks")


def notebooks(names: list[str]) -> list[Path]:
    found = sorted(notebook_dir().glob("*.ipynb"))
    if not names:
        return found
    chosen = [p for p in found if p.stem in names or p.name in names]
    unknown = set(names) - {p.stem for p in chosen} - {p.name for p in chosen}
    if unknown:
        sys.exit(f"unknown notebook(s): {sorted(unknown)}; known: {[p.stem for p in found]}")
    return chosen


def clean_metadata(path: Path) -> None:
    """Drop papermill's run metadata (timestamps, durations) so that executing a
    notebook twice leaves the same file."""
    nb = json.loads(path.read_text())
    nb.get("metadata", {}).pop("papermill", None)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------ same notebook
#: The output data holding a PNG image (base64): a displayed figure, a glued one.
PNG_KEYS = ("image/png", "application/papermill.record/image/png")


def _png_bytes(data) -> bytes:
    """The bytes of a base64 PNG of a notebook output (a string or a list of lines)."""
    text = "".join(data) if isinstance(data, list) else str(data)
    try:
        return base64.b64decode(text)
    except ValueError:
        return text.encode()


def _without_png(output: dict) -> dict:
    data = {k: v for k, v in output.get("data", {}).items() if k not in PNG_KEYS}
    return {**output, "data": data}


def same_output(old: dict, new: dict) -> bool:
    """Are two cell outputs the same: byte-identical, or different only in their PNG
    images, each the same figure by ``bisls_core.plotting.same_png``?"""
    if old == new:
        return True
    keys = [k for k in PNG_KEYS if k in old.get("data", {}) or k in new.get("data", {})]
    if not keys or _without_png(old) != _without_png(new):
        return False
    sys.path.insert(0, str(ROOT))
    from bisls_core.plotting import same_png

    od, nd = old.get("data", {}), new.get("data", {})
    return all(k in od and k in nd and same_png(_png_bytes(od[k]), _png_bytes(nd[k]))
               for k in keys)


def same_notebook(old: dict, new: dict) -> bool:
    """Are two notebooks the same page: the same cells and metadata, and output by output
    the same (:func:`same_output`)? Then the committed one is kept as it is."""
    if old == new:
        return True

    def bare(nb: dict) -> dict:
        return {**nb, "cells": [{k: v for k, v in c.items() if k != "outputs"}
                                for c in nb.get("cells", [])]}

    if bare(old) != bare(new):
        return False
    for co, cn in zip(old.get("cells", []), new.get("cells", [])):
        oo, on = co.get("outputs", []), cn.get("outputs", [])
        if len(oo) != len(on) or not all(same_output(a, b) for a, b in zip(oo, on)):
            return False
    return True


def install_executed(executed: Path, committed: Path) -> bool:
    """Clean the executed copy and put it over the committed page, unless the two are
    :func:`same_notebook` (the committed file is then kept byte for byte). Return
    whether the committed page was replaced."""
    clean_metadata(executed)
    new = json.loads(executed.read_text())
    if committed.is_file() and same_notebook(json.loads(committed.read_text()), new):
        return False
    os.replace(executed, committed)
    return True


# ------------------------------------------------------------------ child processes
def _tree(roots: list[int]) -> tuple[set[int], list]:
    """The process groups and the processes of the trees under ``roots`` (their pids),
    without this script's own group."""
    import psutil

    procs = []
    for pid in roots:
        try:
            root = psutil.Process(pid)
            procs += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    groups = set()
    for p in procs:
        try:
            groups.add(os.getpgid(p.pid))
        except OSError:
            pass
    groups.discard(os.getpgrp())
    return groups, procs


def _signal_groups(groups: set[int], signum: int) -> None:
    for group in groups:
        try:
            os.killpg(group, signum)
        except OSError:  # gone already
            pass


def _survivors(groups: set[int], procs: list) -> list:
    """The processes still alive (not zombies) of ``procs`` or in one of ``groups``."""
    import psutil

    alive = {}
    for p in [*procs, *psutil.process_iter()]:
        try:
            if p.pid in alive or not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
                continue
            if p in procs or os.getpgid(p.pid) in groups:
                alive[p.pid] = p
        except (psutil.Error, OSError):
            continue
    return list(alive.values())


def stop_trees(roots: list[int], signum: int, grace: float = GRACE_S) -> None:
    """Send ``signum`` to the process group of every process under ``roots`` (each
    papermill, the kernel in its own session, the kernel's workers), wait up to ``grace``
    seconds for them to end, then SIGKILL the groups and processes still alive."""
    groups, procs = _tree(roots)
    _signal_groups(groups, signum)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        more, new = _tree(roots)  # a process started meanwhile
        groups |= more
        procs += [p for p in new if p not in procs]
        if not _survivors(groups, procs):
            return
        time.sleep(0.1)
    _signal_groups(groups, signal.SIGKILL)
    for p in _survivors(groups, procs):
        try:
            p.kill()
        except Exception:  # noqa: BLE001 - gone meanwhile
            pass


class Children:
    """The papermill processes running now, each started in its own session; once
    :meth:`stop` was called, no new one starts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[int, subprocess.Popen] = {}
        self.stopping = False

    def start(self, cmd: list[str], env: dict) -> subprocess.Popen | None:
        """Start ``cmd`` in a new session (``None`` when stopping)."""
        with self.lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
            self.running[proc.pid] = proc
            return proc

    def finished(self, proc: subprocess.Popen) -> None:
        with self.lock:
            self.running.pop(proc.pid, None)

    def stop(self, signum: int, grace: float = GRACE_S) -> None:
        """Start no more; end the trees of the running ones (:func:`stop_trees`)."""
        with self.lock:
            self.stopping = True
            roots = list(self.running)
        stop_trees(roots, signum, grace)


CHILDREN = Children()


def install_signal_handlers(children: Children = CHILDREN) -> None:
    """On SIGTERM or SIGINT: stop every child tree, then exit with 128 + the signal."""

    def handler(signum, frame):
        for s in (signal.SIGTERM, signal.SIGINT):  # a second signal does not restart this
            signal.signal(s, signal.SIG_IGN)
        try:
            print(f"\n{signal.Signals(signum).name}: stopping every notebook run (SIGKILL "
                  f"after {GRACE_S:.0f} s)", file=sys.stderr, flush=True)
        except RuntimeError:  # the signal came in the middle of a print
            pass
        children.stop(signum)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (RuntimeError, OSError):
                pass
        os._exit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, handler)


# ------------------------------------------------------------------ papermill
#: A plan runs every cell of a page even after one raised (its stand-in records are not
#: the full runs' numbers), so that the grids of the later cells are listed too.
PLAN_PAPERMILL = ("import json, sys, papermill as pm; "
                  "pm.execute_notebook(sys.argv[1], sys.argv[2], parameters=json.loads(sys.argv[3]), "
                  "kernel_name='python3', cwd=sys.argv[4], progress_bar=False, allow_errors=True)")


def papermill_command(src: Path, dst: Path, params: dict, env: dict) -> list[str]:
    cwd = str(notebook_dir())
    if env.get("BISLS_PLAN"):
        return [sys.executable, "-c", PLAN_PAPERMILL, str(src), str(dst), json.dumps(params), cwd]
    cmd = [str(BIN / "papermill"), str(src), str(dst), "-k", "python3", "--cwd", cwd,
           "--no-progress-bar"]
    for k, v in params.items():
        cmd += ["-p", k, str(v)]
    return cmd


def papermill(src: Path, dst: Path, params: dict, env: dict) -> tuple[str, float, int, str]:
    """Run one page; ``(name, seconds, exit status, the end of its stderr)``."""
    t0 = time.perf_counter()
    proc = CHILDREN.start(papermill_command(src, dst, params, env), env)
    if proc is None:
        return src.stem, 0.0, 128 + signal.SIGTERM, "not started: stopping"
    try:
        _, err = proc.communicate()
    finally:
        CHILDREN.finished(proc)
    return src.stem, time.perf_counter() - t0, proc.returncode, (err or "")[-3000:]


def book_scale() -> str:
    """The book's scale (``$BISLS_BOOK_SCALE``, else ``cpu``), as the notebooks read it."""
    sys.path.insert(0, str(ROOT))
    from bisls_core.experiments import book_scale as scale

    return scale()


# ------------------------------------------------------------------ progress
def executor_workers(spec: str) -> int:
    """How many runs a ``BISLS_EXECUTOR`` value runs at once, for the estimate: the
    workers of a process pool or a local Dask cluster
    (``bisls_core.experiments.parse_executor_spec``); 1 for anything else."""
    sys.path.insert(0, str(ROOT))
    from bisls_core.experiments import parse_executor_spec

    try:
        return parse_executor_spec(spec).workers or 1
    except (TypeError, ValueError):
        return 1


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def progress_line(notebook: str, entry: dict, seconds: list[float], workers: int) -> str:
    """One finished run: the page, label, seed, its seconds, ``done/total`` runs of its
    grid and the estimated time left (mean of ``seconds``, the grid's finished runs so
    far, x runs left / ``workers``)."""
    done, total = int(entry["done"]), int(entry["total"])
    line = (f"  {notebook}: {entry.get('label')} seed {entry.get('seed')} "
            f"{float(entry['seconds']):.1f} s, {done}/{total} runs of {entry.get('name')}")
    left = total - done
    if left <= 0:
        return line + ", grid done"
    mean = sum(seconds) / len(seconds) if seconds else float(entry["seconds"])
    return (line + f", about {_duration(mean * left / max(1, workers))} left in this grid "
            f"(estimate: {mean:.1f} s/run x {left} runs / {workers} workers)")


class ProgressWatcher(threading.Thread):
    """Reads the pages' progress files every ``interval`` seconds and prints a
    :func:`progress_line` per newly finished run."""

    def __init__(self, files: list[tuple[str, Path, int]], interval: float = POLL_S,
                 out=None) -> None:
        super().__init__(daemon=True)
        self.files, self.interval, self.out = files, interval, out
        self.offsets = {path: 0 for _, path, _ in files}
        self.grids: dict[tuple[str, str], tuple[int, list[float]]] = {}
        self.done = threading.Event()

    def _entries(self, path: Path) -> list[dict]:
        """The complete JSON lines appended to ``path`` since the last read."""
        try:
            with path.open("rb") as fh:
                fh.seek(self.offsets[path])
                chunk = fh.read()
        except OSError:
            return []
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.offsets[path] += len(complete)
        out = []
        for raw in complete.splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out

    def poll(self) -> list[str]:
        """The lines of the runs finished since the last poll."""
        lines = []
        for notebook, path, workers in self.files:
            for entry in self._entries(path):
                try:
                    key, done = (notebook, str(entry["name"])), int(entry["done"])
                    last, seconds = self.grids.get(key, (0, []))
                    seconds = seconds if done > last else []  # a new grid of that folder
                    seconds = [*seconds, float(entry["seconds"])]
                    self.grids[key] = (done, seconds)
                    lines.append(progress_line(notebook, entry, seconds, workers))
                except (KeyError, TypeError, ValueError):
                    continue
        return lines

    def emit(self) -> None:
        out = self.out or sys.stdout
        for line in self.poll():
            print(line, file=out)
        out.flush()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.emit()

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():
            self.join()
        self.emit()


def progress_file(name: str) -> Path:
    """The ``$BISLS_PROGRESS`` of one page (emptied: a new run starts it)."""
    path = PROGRESS / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def watcher_of(jobs: list[tuple]) -> ProgressWatcher:
    """The watcher of the progress files of ``jobs`` (those that have one)."""
    files = [(nb.stem, Path(env["BISLS_PROGRESS"]),
              executor_workers(env.get("BISLS_EXECUTOR", "")))
             for nb, _, _, env in jobs if env.get("BISLS_PROGRESS")]
    return ProgressWatcher(files)


# ------------------------------------------------------------------ jobs
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["smoke", "results", "execute"])
    ap.add_argument("names", nargs="*", help="notebook names (default: all)")
    ap.add_argument("--scale", default=None, choices=["smoke", "cpu", "paper"],
                    help="results: the scale to fill (default: the book's, $BISLS_BOOK_SCALE or cpu)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--reading", default=None,
                    help="results only: run the pages under this reading of the paper's open "
                         "choices (bisls_core.readings.READINGS); their claims go to "
                         "results/<scale>/claims/readings/<reading>/, their figures to .scratch/")
    ap.add_argument("--plan", "--dry-run", dest="plan", action="store_true",
                    help="results: list the missing runs and estimate their time, compute nothing")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="notebooks run at once")
    args = ap.parse_intermixed_args(argv)
    if args.plan and args.mode != "results":
        ap.error("--plan lists the runs of 'results'")
    if args.reading is not None:
        if args.mode != "results":
            ap.error("--reading runs the pages of 'results' under another reading")
        sys.path.insert(0, str(ROOT))
        from bisls_core.readings import READINGS

        if args.reading not in READINGS:
            ap.error(f"unknown reading {args.reading!r}; known readings: {', '.join(READINGS)}")
    return args


def reader_env(env: dict) -> dict:
    """``env`` without ``BISLS_WRITE_BOOK``: runs that must not update the book."""
    return {k: v for k, v in env.items() if k != "BISLS_WRITE_BOOK"}


def results_env(env: dict, scale: str, name: str) -> dict:
    """The environment of one page of ``results`` at ``scale``."""
    out = dict(env, BISLS_PROGRESS=str(progress_file(name)))
    out.setdefault("BISLS_EXECUTOR", DEFAULT_EXECUTOR)
    if scale == "smoke":  # smoke is never committed
        return reader_env(out)
    # the cache of a deliberate fill is kept for committing
    return dict(out, BISLS_RESULTS=str(ROOT / "results"), BISLS_WRITE_BOOK="1")


def plan_jobs(args, env: dict) -> list[tuple]:
    """The jobs of ``results --plan``: each page in plan mode (``$BISLS_PLAN``: one plan
    file per page under .scratch/plan/), reading the cache where ``results`` would write."""
    out = SCRATCH / "plan"
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for nb in notebooks(args.names):
        plan = out / f"{nb.stem}.jsonl"
        plan.unlink(missing_ok=True)
        env_p = dict(reader_env(env), BISLS_PLAN=str(plan), BISLS_PLAN_NOTEBOOK=nb.stem,
                     BISLS_RESULTS=str(ROOT / "results"), BISLS_FIGURES=str(out / "figures"))
        jobs.append((nb, out / f"{nb.stem}-{args.scale}.ipynb",
                     {"scale": args.scale, "device": args.device}, env_p))
    return jobs


def make_jobs(args, env: dict) -> list[tuple]:
    """``(notebook, executed copy, parameters, environment)`` of every papermill run."""
    if args.mode == "results" and args.plan:
        return plan_jobs(args, env)
    out = SCRATCH / args.mode
    out.mkdir(parents=True, exist_ok=True)
    if args.mode == "smoke":
        env_s = check_book_scale.smoke_env(reader_env(env))
    jobs = []
    for nb in notebooks(args.names):
        if args.mode == "smoke":  # no scale parameter: the page takes the book's (smoke)
            log = dict(env_s, BISLS_CACHE_LOG=str(check_book_scale.cache_log(nb.stem)))
            jobs.append((nb, out / nb.name, {"recompute": True}, log))
        elif args.mode == "results":
            params = {"scale": args.scale, "device": args.device}
            suffix = args.scale
            if getattr(args, "reading", None) is not None:
                params["reading"], suffix = args.reading, f"{args.scale}-{args.reading}"
            jobs.append((nb, out / f"{nb.stem}-{suffix}.ipynb", params,
                         results_env(env, args.scale, nb.stem)))
        else:  # execute: into a copy, over the committed page once it succeeded
            env_e = dict(env, BISLS_WRITE_BOOK="1", BISLS_PROGRESS=str(progress_file(nb.stem)))
            jobs.append((nb, out / nb.name, {}, env_e))
    return jobs


def run_jobs(jobs: list[tuple], workers: int) -> tuple[list[str], dict[str, float]]:
    """Run the papermill jobs, ``workers`` at once; the failed pages, every page's seconds."""
    failed, seconds = [], {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for name, secs, rc, err in pool.map(lambda j: papermill(*j), jobs):
            print(f"{name:<40} {secs:7.1f} s  {'ok' if rc == 0 else 'FAILED'}", flush=True)
            seconds[name] = round(secs, 1)
            if rc != 0:
                failed.append(name)
                print(err, file=sys.stderr)
    return failed, seconds


# ------------------------------------------------------------------ after the runs
def timings_record(args, jobs: list[tuple], seconds: dict[str, float], total: float,
                   failed: list[str]) -> dict:
    """What ``results/<scale>/timings/make_results.json`` holds."""
    executors = sorted({env.get("BISLS_EXECUTOR", "") for _, _, _, env in jobs})
    return {**timed.machine(), "command": "make results", "scale": args.scale,
            "seconds": round(total, 1), "executor": ", ".join(executors),
            "pages_at_once": args.jobs, "device": args.device,
            "pages_ok": len(jobs) - len(failed), "pages_failed": len(failed), "pages": seconds}


def write_results_timings(args, jobs: list[tuple], seconds: dict[str, float], total: float,
                          failed: list[str], root: Path = ROOT / "results") -> Path | None:
    """Write the timings of a ``results`` run of every page at the book's scale that
    succeeded into ``<root>/<scale>/timings/make_results.json``; ``None`` (nothing
    written) for any other run."""
    if (args.mode != "results" or args.plan or failed or args.names or not jobs
            or getattr(args, "reading", None) is not None or args.scale == "smoke"
            or args.scale != book_scale()):
        return None
    path = root / args.scale / "timings" / "make_results.json"
    timed.write_json_atomic(path, timings_record(args, jobs, seconds, total, failed))
    return path


def install_pages(jobs: list[tuple], failed: list[str]) -> list[str]:
    """``execute``: put each page that succeeded over its committed copy
    (:func:`install_executed`); the names of the pages replaced."""
    return [nb.stem for nb, executed, _, _ in jobs
            if nb.stem not in failed and install_executed(executed, nb)]


def adjust_book_claims(args) -> None:
    """After ``execute`` or ``results`` at the book's scale under the primary reading:
    Holm's adjustment across the paper's claims, written into their records
    (``bisls_core.records.adjust_claims``) by this process, which updates the book."""
    if args.mode not in ("execute", "results") or getattr(args, "plan", False) \
            or getattr(args, "reading", None) is not None:
        return
    scale = args.scale or book_scale()
    if scale == "smoke" or scale != book_scale():
        return
    sys.path.insert(0, str(ROOT))
    saved = {k: os.environ.get(k) for k in ("BISLS_WRITE_BOOK", "BISLS_RESULTS")}
    os.environ.update(BISLS_WRITE_BOOK="1", BISLS_RESULTS=str(ROOT / "results"))
    try:
        from bisls_core.records import adjust_claims

        changed = adjust_claims(scale)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"Holm's adjustment written into {len(changed)} claim file(s)")


def finish(args, jobs: list[tuple], failed: list[str]) -> int:
    """After the runs: install the executed pages, check the smoke stand-in, summarise a
    plan or say where a fill's results went and what comes next."""
    if args.mode == "execute":
        changed = install_pages(jobs, failed)
        print(f"{len(changed)} page(s) changed: {changed}; "
              f"{len(jobs) - len(failed) - len(changed)} kept (the same outputs)")
    adjust_book_claims(args)
    if args.mode == "smoke" and not failed:
        problems = check_book_scale.check_smoke([nb.stem for nb, *_ in jobs], SCRATCH / "smoke")
        for line in problems:
            print(f"scale check: {line}", file=sys.stderr)
        if problems:
            return 1
        print("scale check: every page, figure, claim and the scorecard say 'smoke'")
    if args.mode == "results" and args.plan:
        print(check_book_scale.plan_report([SCRATCH / "plan" / f"{nb.stem}.jsonl"
                                            for nb, *_ in jobs], failed))
    elif args.mode == "results":
        nxt = ("make notebooks" if args.scale == book_scale() else f"make book SCALE={args.scale}")
        print(f"results of scale {args.scale!r} are in {ROOT / 'results' / args.scale}/ "
              f"(commit them); next: {nxt}")
    if failed:
        print(f"{len(failed)} notebook(s) failed: {failed}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "results" and args.scale is None:
        args.scale = book_scale()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    jobs = make_jobs(args, env)
    install_signal_handlers()
    watcher = watcher_of(jobs)
    watcher.start()
    t0 = time.perf_counter()
    try:
        failed, seconds = run_jobs(jobs, args.jobs)
    finally:
        watcher.stop()
    total = time.perf_counter() - t0
    written = write_results_timings(args, jobs, seconds, total, failed)
    if written:
        print(f"timings: {written.relative_to(ROOT)}")
    return finish(args, jobs, failed)


if __name__ == "__main__":
    sys.exit(main())
