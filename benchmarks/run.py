"""Benchmark report: prints, side by side in one run,

1. the per-iteration cost of BiSLS-SGD/Adam against fixed-step bilevel SGD/Adam
   on the hyper-representation problem (ratio; the issue's target is <= 1.3x),
   with the line-search rounds that explain it;
2. the cost of one hypergradient per estimator, in gradient-equivalents (the
   time of one gradient of f in (x, y) on the same batch);
3. the stages of the last `make test` (read from .scratch/timings.txt);
4. a cProfile of BiSLS-SGD's hot loop (top functions by cumulative time).

    python benchmarks/run.py [--device cpu|cuda] [--K 20] [--threads 1]

Numbers are wall-clock on whatever machine runs it; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bisls_core import bilevel, hypergrad, problems  # noqa: E402
from bisls_core.experiments import resolve_device  # noqa: E402

SIZES = dict(n_train=1000, n_val=500, n_test=500, batch_train=128, batch_val=128)


def per_iteration(device: str, K: int) -> dict[str, dict]:
    out = {}
    common = dict(K=K, T=5, hypergrad="cg", hypergrad_steps=5, w=0.5, max_rounds=50)
    bisls = dict(alpha=10.0, beta=100.0)
    runs = {  # label -> (method, fields)
        "SGD": ("SGD", dict(alpha=0.005, beta=0.5)),
        "Adam": ("Adam", dict(alpha=1e-4, beta=0.5)),
        "BiSLS-SGD": ("BiSLS-SGD", bisls),
        "BiSLS-SGD +slope": ("BiSLS-SGD", dict(bisls, diagnostics=True)),
        "BiSLS-SGD +exit": ("BiSLS-SGD", dict(bisls, early_exit=True)),
        "BiSLS-Adam": ("BiSLS-Adam", bisls),
        "BiSLS-Adam +exit": ("BiSLS-Adam", dict(bisls, early_exit=True)),
    }
    for label, (method, steps) in runs.items():
        problem = problems.make("hyperrep", device=device, seed=0, **SIZES)
        cfg = bilevel.make_config(method, **common, **steps, eval_every=K)
        rec = bilevel.run_bilevel(problem, cfg, seed=0)
        out[label] = {
            "s_per_iter": float(rec["time"][-1]) / K,
            "upper_rounds": float(rec["upper_rounds"].mean()),
            "lower_rounds": float(rec["lower_rounds"].mean()),
            "failures": int(rec["upper_failures"].sum()),
            "oracles_per_iter": float((rec["n_grad"] + rec["n_hvp"]).mean()),
            "calls": tuple(float(rec[key].mean()) for key in ("n_fun", "n_grad", "n_hvp")),
        }
    return out


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
    cfg = bilevel.make_config("BiSLS-SGD", K=K, T=5, hypergrad="cg", hypergrad_steps=5,
                              alpha=10.0, beta=100.0, w=0.5, max_rounds=50, eval_every=K)
    prof = cProfile.Profile()
    prof.enable()
    bilevel.run_bilevel(problem, cfg, seed=0)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(12)
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--K", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device).type
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"hyper-representation sizes {SIZES}, K = {args.K}\n")

    print("1. per-iteration cost (T = 5, CG 5 steps, w = 0.5, max_rounds = 50)")
    it = per_iteration(device, args.K)
    print(f"   {'method':<17} {'s/iter':>8} {'ratio':>7} {'oracles/iter':>13} {'ratio':>7} "
          f"{'f/g evals':>9} {'grads':>6} {'HVPs':>6} {'upper rounds':>13} {'lower rounds':>13} "
          f"{'failed searches':>16}")
    for method, r in it.items():
        ref = it["Adam" if "Adam" in method else "SGD"]
        fun, grad, hvp = r["calls"]
        print(f"   {method:<17} {r['s_per_iter']:8.3f} {r['s_per_iter'] / ref['s_per_iter']:6.2f}x "
              f"{r['oracles_per_iter']:13.1f} {r['oracles_per_iter'] / ref['oracles_per_iter']:6.2f}x "
              f"{fun:9.1f} {grad:6.1f} {hvp:6.1f} "
              f"{r['upper_rounds']:13.1f} {r['lower_rounds']:13.1f} {r['failures']:16d}")
    print("   (ratios: against fixed-step SGD or Adam with the same T and CG steps; target <= 1.3x;")
    print("    oracles = gradient evaluations + second-order products, as recorded by the loop;")
    print("    per iteration: f/g evals = function values without a gradient (search trials),")
    print("    grads, HVPs = second-order products; BiSLS uses reset option 3 (\"grow\") with")
    print("    eta = 2 upstairs; +slope records the trial's slope (diagnostics=True); +exit stops")
    print("    hopeless searches (early_exit=True, on_failure=\"floor\"); the library default is")
    print("    neither)\n")

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
