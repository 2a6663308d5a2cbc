"""bisls_core: step-size rules, hypergradients and the bilevel loop of
*BiSLS/SPS: Auto-tune Step Sizes for Stable Bi-level Optimization*.

Modules (each depends only on those above it):

* :mod:`bisls_core.stepsizes` -- pure step-size rules (SPS family, Armijo, envelope, reset)
* :mod:`bisls_core.problems` -- problems as plain functions plus sizes
* :mod:`bisls_core.data` -- the shipped data sets, checked by SHA-256
* :mod:`bisls_core.optim` -- ``torch.optim`` optimizers for single-level use
* :mod:`bisls_core.hypergrad` -- hypergradient estimators
* :mod:`bisls_core.bilevel` -- the bilevel loop (BiSLS-SGD/Adam, BiSPS, baselines)
* :mod:`bisls_core.experiments` -- scale presets, grids of runs, the results cache
* :mod:`bisls_core.plotting` -- the book's figure style
"""

__version__ = "0.1.0"
