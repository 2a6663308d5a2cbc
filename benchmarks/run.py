"""Benchmark report: prints, side by side in one run,

1. the per-iteration cost of BiSLS-SGD/Adam against fixed-step bilevel SGD/Adam on the
   hyper-representation problem's cpu preset (T = 5, batch 128, CG 5, w = 0.5,
   max_rounds = 50, the early exit on), the variants interleaved in one process: time
   per iteration, the ratio to the fixed step (issue 24's target: <= 1.3x), the floor
   computed from measured pieces -- the fixed iteration, plus one f evaluation at a trial
   point per upper trial, plus one lower trial (g at the memoised embedding) per lower
   trial, times the trials the run counted -- and the ratio to that floor; with the
   pieces the floor leaves out (the upper trial's own lower step, the trial model of
   condition (14)) and the machine's load (os.getloadavg) before and after;
2. the cost of one hypergradient per estimator, in gradient-equivalents (the
   time of one gradient of f in (x, y) on the same batch);
3. the stages of the last `make test` (read from .scratch/timings.txt);
4. a cProfile of BiSLS-SGD's hot loop (top functions by cumulative time);

and with ``--ladder L``, after section 1 (1b): BiSLS-SGD's upper search, time per search,
sequential against ladders of L candidates per batched call (``BilevelConfig.ladder``).

    python benchmarks/run.py [--device cpu|cuda] [--K 20] [--repeats 5] [--threads 1]
                             [--out .scratch/bench.json] [--save] [--only-iterations]
                             [--ladder 8]

Section 1's numbers go to the JSON file ``--out`` (default ``.scratch/bench.json``);
``--save`` also writes them to ``results/cpu/bench.json``, for committing. Numbers are
wall-clock on whatever machine runs it; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bisls_core import bilevel, hypergrad, problems  # noqa: E402
from bisls_core.experiments import resolve_device  # noqa: E402

#: The hyper-representation cpu preset (bisls_core.sweeps.hyperrep.PRESETS["cpu"]).
SIZES = dict(n_train=1000, n_val=500, n_test=1000, batch_train=128, batch_val=128)
COMMON = dict(T=5, hypergrad="cg", hypergrad_steps=5, w=0.5, max_rounds=50)
#: label -> (method, step fields, the fixed-step label it is compared with)
VARIANTS = {
    "SGD": ("SGD", dict(alpha=0.005, beta=0.5), "SGD"),
    "Adam": ("Adam", dict(alpha=1e-4, beta=0.5), "Adam"),
    "BiSLS-SGD": ("BiSLS-SGD", dict(alpha=10.0, beta=100.0, early_exit=True), "SGD"),
    "BiSLS-Adam": ("BiSLS-Adam", dict(alpha=10.0, beta=100.0, early_exit=True), "Adam"),
}


class _Timer:
    """Wall time and calls of a method, summed (it wraps the class attribute)."""

    def __init__(self, owner, name):
        self.owner, self.name, self.original = owner, name, getattr(owner, name)
        self.seconds, self.calls = 0.0, 0

    def __enter__(self):
        original = self.original

        def timed(*args, **kwargs):
            tic = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - tic
                self.calls += 1

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.name, self.original)


def _one_run(problem, label: str, K: int, seed: int) -> dict:
    method, steps, _ = VARIANTS[label]
    cfg = bilevel.make_config(method, K=K, **COMMON, **steps, eval_every=K)
    with _Timer(bilevel.Line14Trial, "model") as model, \
            _Timer(bilevel.Line14Trial, "__call__") as trial:
        rec = bilevel.run_bilevel(problem, cfg, seed=seed)
    return {
        "s_per_iter": float(rec["time"][-1]) / K,
        "upper_trials": float(rec["upper_rounds"].mean()),
        "lower_trials": float(rec["lower_rounds"].mean()) * COMMON["T"],
        "failures": int(rec["upper_failures"].sum()),
        "oracles_per_iter": float((rec["n_grad"] + rec["n_hvp"]).mean()),
        "calls": [float(rec[key].mean()) for key in ("n_fun", "n_grad", "n_hvp")],
        "model_s_per_iter": model.seconds / K,
        "upper_trial_s_per_iter": trial.seconds / K,
    }


def _piece_times(problem, n: int = 20) -> dict[str, float]:
    """Seconds of the pieces of the floor: ``f_trial``, f at a trial point (no graph, a
    new x each time: the embedding is computed); ``lower_trial``, g at a lower trial
    point (the embedding of x and the batch memoised, as in a lower search); and
    ``trial_lower_step``, the upper trial's own lower step (g and its gradient in y at a
    new x), which the floor leaves out."""
    gen = torch.Generator().manual_seed(0)
    idx_f, idx_g = problem.sample_upper(gen), problem.sample_lower(gen)
    x, y = problem.x0, problem.y0 + 0.01
    d = torch.randn(x.shape, generator=gen).to(x.device)
    oracles = bilevel.Oracles(problem, bilevel.make_config("SGD"), gen)
    _, grad = oracles.g_and_grad(x, y, idx_g)
    out = {"f_trial": 0.0, "lower_trial": 0.0, "trial_lower_step": 0.0}
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def timed(fn):
        sync()
        tic = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - tic

    for i in range(n + 1):  # the first round warms up
        x_hat = x - (1e-3 * (i + 1)) * d
        with torch.no_grad():
            f_trial = timed(lambda: problem.f(x_hat, y, idx_f))  # noqa: B023
            trial_lower_step = timed(lambda: oracles.g_and_grad(x_hat, y, idx_g))  # noqa: B023
            oracles.g_and_grad(x, y, idx_g)  # the memo at (x, idx_g), as in a lower search
            lower_trial = timed(lambda: problem.g(x, y - (0.1 * (i + 1)) * grad, idx_g))  # noqa: B023
        if i:
            out["f_trial"] += f_trial / n
            out["lower_trial"] += lower_trial / n
            out["trial_lower_step"] += trial_lower_step / n
    return out


def per_iteration(device: str, K: int, repeats: int) -> dict:
    """Section 1: the variants interleaved (each repeat runs each once, in turn, with the
    pieces of the floor timed between them); medians over the repeats."""
    load_before = os.getloadavg()
    problem = {label: problems.make("hyperrep", device=device, seed=0, **SIZES)
               for label in VARIANTS}
    pieces_problem = problems.make("hyperrep", device=device, seed=0, **SIZES)
    runs: dict[str, list[dict]] = {label: [] for label in VARIANTS}
    pieces: list[dict] = []
    for r in range(repeats + 1):  # repeat 0 warms up, not counted
        for label in VARIANTS:
            out = _one_run(problem[label], label, K, seed=r)
            if r:
                runs[label].append(out)
        if r:
            pieces.append(_piece_times(pieces_problem))
    piece = {key: statistics.median(p[key] for p in pieces) for key in pieces[0]}
    table = {}
    for label, (_, _, fixed) in VARIANTS.items():
        med = {key: statistics.median(o[key] for o in runs[label])
               for key in ("s_per_iter", "upper_trials", "lower_trials",
                           "oracles_per_iter", "model_s_per_iter", "upper_trial_s_per_iter")}
        t_fixed = statistics.median(o["s_per_iter"] for o in runs[fixed])
        floor = (t_fixed + med["upper_trials"] * piece["f_trial"]
                 + med["lower_trials"] * piece["lower_trial"])
        table[label] = {
            **med,
            "s_per_iter_all": [o["s_per_iter"] for o in runs[label]],
            "failures": sum(o["failures"] for o in runs[label]),
            "calls": runs[label][-1]["calls"],
            "fixed": fixed,
            "ratio_to_fixed": med["s_per_iter"] / t_fixed,
            "floor_s_per_iter": floor,
            "floor_ratio_to_fixed": floor / t_fixed,
            "ratio_to_floor": med["s_per_iter"] / floor,
            "floor_with_trial_lower_step_s": floor + med["upper_trials"]
            * piece["trial_lower_step"],
        }
    return {
        "device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.machine(), "processor": platform.processor() or platform.node(),
        "cpus": os.cpu_count(), "K": K, "repeats": repeats, "sizes": SIZES,
        "settings": COMMON, "variants": {k: [v[0], v[1]] for k, v in VARIANTS.items()},
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
        "pieces_s": piece, "per_method": table,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def print_per_iteration(it: dict) -> None:
    ms = 1e3
    p = it["pieces_s"]
    print(f"1. per-iteration cost, hyper-representation cpu preset (T = 5, batch 128, CG 5, "
          f"w = 0.5, max_rounds = 50, BiSLS with the early exit), {it['repeats']} interleaved "
          f"repeats of K = {it['K']} (medians)")
    print(f"   load average before {tuple(round(v, 2) for v in it['loadavg_before'])}, "
          f"after {tuple(round(v, 2) for v in it['loadavg_after'])} ({it['cpus']} CPUs)")
    print(f"   pieces: f at a trial point {p['f_trial'] * ms:.2f} ms, one lower trial "
          f"{p['lower_trial'] * ms:.3f} ms, the upper trial's lower step "
          f"{p['trial_lower_step'] * ms:.2f} ms")
    print(f"   {'method':<11} {'ms/iter':>8} {'vs fixed':>9} {'floor ms':>9} {'floor/fixed':>12} "
          f"{'vs floor':>9} {'upper trials':>13} {'lower trials':>13} {'model ms':>9} "
          f"{'trials ms':>10} {'oracles':>8}")
    for label, r in it["per_method"].items():
        print(f"   {label:<11} {r['s_per_iter'] * ms:8.1f} {r['ratio_to_fixed']:8.2f}x "
              f"{r['floor_s_per_iter'] * ms:9.1f} {r['floor_ratio_to_fixed']:11.2f}x "
              f"{r['ratio_to_floor']:8.2f}x {r['upper_trials']:13.2f} {r['lower_trials']:13.1f} "
              f"{r['model_s_per_iter'] * ms:9.1f} {r['upper_trial_s_per_iter'] * ms:10.1f} "
              f"{r['oracles_per_iter']:8.1f}")
    print("   (vs fixed: against fixed-step SGD or Adam, same T and CG steps; target <= 1.3x.")
    print("    floor = the fixed iteration + (upper trials) x (f at a trial point) + (lower")
    print("    trials) x (one lower trial), the trials as counted; vs floor: the time over it.")
    print("    What the floor leaves out: each upper trial's own lower step (g and its gradient")
    print("    in y at the trial point: one more forward pass, which condition (14)'s trial")
    print("    needs) and the trial model phi(0), phi'(0) of the early exit ('model ms': one")
    print("    backward pass through f and one through the lower step; its forward passes")
    print("    are the hypergradient's); 'trials ms': the upper trials, both forward passes.")
    print("    oracles = gradient evaluations + second-order products per iteration)\n")


def _timeit(fn, repeat: int = 5) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeat


def hypergradient_cost(device: str) -> dict[str, tuple[float, int]]:
    problem = problems.make("hyperrep", device=device, seed=0, **SIZES)
    gen = torch.Generator().manual_seed(0)
    idx_f, idx_g = problem.sample_upper(gen), problem.sample_lower(gen)
    x, y = problem.x0, problem.y0 + 0.01

    def one_gradient():
        xx, yy = x.detach().requires_grad_(), y.detach().requires_grad_()
        torch.autograd.grad(problem.f(xx, yy, idx_f), (xx, yy))

    base = _timeit(one_gradient)
    out = {}
    for method in ("identity", "neumann", "cg", "exact"):
        kwargs = dict(steps=10, lr=0.1) if method == "neumann" else dict(steps=10)
        res = hypergrad.hypergradient(problem.f, problem.g, x, y, idx_f, idx_g, method=method, **kwargs)
        t = _timeit(lambda: hypergrad.hypergradient(problem.f, problem.g, x, y, idx_f, idx_g,
                                                     method=method, **kwargs), repeat=2 if method == "exact" else 5)
        out[method] = (t / base, res.n_hvp)
    return out


def profile(device: str, K: int) -> str:
    problem = problems.make("hyperrep", device=device, seed=0, **SIZES)
    cfg = bilevel.make_config("BiSLS-SGD", K=K, **COMMON, **VARIANTS["BiSLS-SGD"][1],
                              eval_every=K)
    prof = cProfile.Profile()
    prof.enable()
    bilevel.run_bilevel(problem, cfg, seed=0)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(12)
    return buf.getvalue()


def ladder_cost(device: str, K: int, size: int, repeats: int) -> None:
    """Section 1b: BiSLS-SGD's searches (``BiSLSUpper.step``: the trial model, the trials)
    sequential and in ladders of ``size``, interleaved; medians over ``repeats``."""
    method, steps, _ = VARIANTS["BiSLS-SGD"]
    times: dict[int, list[float]] = {0: [], size: []}
    rec = {}
    for r in range(repeats + 1):  # repeat 0 warms up, not counted
        for ladder in (0, size):
            problem = problems.make("hyperrep", device=device, seed=0, **SIZES)
            cfg = bilevel.make_config(method, K=K, **COMMON, **steps, eval_every=K,
                                      ladder=ladder)
            with _Timer(bilevel.BiSLSUpper, "step") as search:
                rec[ladder] = bilevel.run_bilevel(problem, cfg, seed=r)
            if r:
                times[ladder].append(search.seconds / K)
    seq, lad = statistics.median(times[0]), statistics.median(times[size])
    rounds = rec[0]["upper_rounds"].mean()  # the same searches: n_fun grows by the extra
    evaluated = rounds + (rec[size]["n_fun"] - rec[0]["n_fun"]).mean()
    print(f"1b. BiSLS-SGD's upper search, ms per search (median of {repeats}, K = {K}): "
          f"sequential {seq * 1e3:.1f}, ladders of {size} {lad * 1e3:.1f} ({lad / seq:.2f}x); "
          f"last run: {rounds:.1f} rounds, {evaluated:.1f} candidates evaluated per search\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--K", type=int, default=20, help="iterations per timed run")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats of section 1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / ".scratch" / "bench.json"),
                    help="JSON file for section 1's numbers")
    ap.add_argument("--save", action="store_true",
                    help="also write section 1's numbers to results/cpu/bench.json")
    ap.add_argument("--only-iterations", action="store_true", help="section 1 only")
    ap.add_argument("--ladder", type=int, default=0,
                    help="also time BiSLS-SGD's search in ladders of this size (1b)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device).type
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"hyper-representation sizes {SIZES}, K = {args.K}\n")

    it = per_iteration(device, args.K, args.repeats)
    print_per_iteration(it)
    targets = [Path(args.out)] + ([ROOT / "results" / "cpu" / "bench.json"] if args.save else [])
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(it, indent=1) + "\n", encoding="utf-8")
        print(f"   written to {path}")
    print()
    if args.ladder >= 2:
        ladder_cost(device, args.K, args.ladder, args.repeats)
    if args.only_iterations:
        return 0

    print("2. one hypergradient, in gradient-equivalents (Q = 10 steps; time / one gradient of f;")
    print("   target for CG: <= Q + 2 = 12)")
    for method, (ratio, n_hvp) in hypergradient_cost(device).items():
        print(f"   {method:<10} {ratio:7.1f} gradient-equivalents   {n_hvp:5d} second-order products")
    print()

    timings = ROOT / ".scratch" / "timings.txt"
    print("3. stages of the last `make test` (.scratch/timings.txt)")
    print("".join(f"   {line}" for line in timings.read_text().splitlines(True)) if timings.exists()
          else "   (none recorded yet: run make test)")
    print()
    print("4. GPU throughput at paper scale: " + ("see results/paper/*/ entries' recorded seconds"
          if torch.cuda.is_available() else "not measured (no GPU on this machine)"))
    print()
    print("5. cProfile of BiSLS-SGD (top 12 by cumulative time)")
    print(profile(device, max(5, args.K // 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
