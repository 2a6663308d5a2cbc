"""Sweeps shared by the figure notebooks, one module per task (above the core:
they import the problems, the bilevel loop and the experiments module)."""
