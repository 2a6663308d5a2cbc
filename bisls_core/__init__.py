"""bisls_core: step-size rules, hypergradients and the bilevel loop of
*BiSLS/SPS: Auto-tune Step Sizes for Stable Bi-level Optimization*.

Modules, from the bottom layer up (each imports only modules listed before it):

* :mod:`bisls_core._validate` -- checks of settings, shared (integers, finite numbers, names, devices)
* :mod:`bisls_core.stepsizes` -- pure step-size rules (SPS family, envelope, reset) and the
  one Armijo search with its guards
* :mod:`bisls_core.data` -- the shipped data sets, checked by SHA-256
* :mod:`bisls_core.optim` -- ``torch.optim`` optimizers for single-level use (imports
  only ``stepsizes``)
* :mod:`bisls_core.hypergrad` -- hypergradient estimators
* :mod:`bisls_core.problems` -- problems as plain functions plus sizes
* :mod:`bisls_core.experiments` -- scale presets, grids of runs, the results cache
* :mod:`bisls_core.bilevel` -- the bilevel loop as small rules (BiSLS-SGD/Adam, BiSPS, baselines)
* :mod:`bisls_core.single_level` -- the single-level experiment runner
* :mod:`bisls_core.plotting` -- the book's figure style
* :mod:`bisls_core.sweeps` -- the sweeps the figure notebooks share
"""

__version__ = "0.1.0"
