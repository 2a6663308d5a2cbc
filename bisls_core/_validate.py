"""Checks of user settings, shared by every module (the bottom layer: imports no
other module of the package).

Each check returns the normalised value or raises an error that names the
setting: ``TypeError`` when the value is not of the right kind (a string for a
number), ``ValueError`` when it is of the right kind but out of range (a
negative count, an infinite step, an unknown name; the message then lists the
valid names).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

__all__ = ["DEVICES", "MAX_STEPS", "PROGRESS_DELAY", "available_memory", "check_bool",
           "check_choice", "check_int", "check_memory", "check_number", "check_positive",
           "check_work", "progress_bar", "resolve_device"]

#: The device names every entry point accepts (any other string torch understands,
#: such as ``"cuda:1"``, is accepted too).
DEVICES = ("auto", "cpu", "cuda")


def check_int(name: str, value: Any, minimum: int) -> int:
    """``int(value)`` for an integer ``>= minimum``; an integral float (``3.0``, as
    papermill or a JSON file may give) counts as an integer.

    ``TypeError`` for a bool or a non-number, ``ValueError`` for a fractional or
    non-finite float or a value below ``minimum``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer, float, np.floating)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """``bool(value)`` for ``True``/``False``; a ``TypeError`` naming ``name`` otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_number(name: str, value: Any) -> float:
    """``float(value)`` for a finite real number (not a bool)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


def check_positive(name: str, value: Any, *, allow_zero: bool = False,
                   below: float | None = None, at_most: float | None = None) -> float:
    """``float(value)`` for a finite number ``> 0`` (``>= 0`` with ``allow_zero``),
    optionally ``< below`` or ``<= at_most``; an error naming ``name`` otherwise."""
    v = check_number(name, value)
    low = "[0" if allow_zero else "(0"
    high = (f", {below:g})" if below is not None else f", {at_most:g}]" if at_most is not None
            else ", inf)")
    if (v < 0 or (v == 0 and not allow_zero) or (below is not None and not v < below)
            or (at_most is not None and not v <= at_most)):
        if below is None and at_most is None:
            raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
        raise ValueError(f"{name} must lie in {low}{high}, got {value!r}")
    return v


def check_choice(name: str, value: object, choices) -> None:
    """Raise a ``ValueError`` naming the parameter and listing the valid values."""
    try:
        known = value in choices
    except TypeError:  # an unhashable value is no key of a dict
        known = False
    if not known:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; valid values are: {valid}")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` a setting names: ``None`` or ``"cpu"`` the CPU,
    ``"auto"`` CUDA when available (else the CPU), ``"cuda"`` (or ``"cuda:1"``, a
    ``torch.device``) that GPU.

    CUDA without a GPU is a ``ValueError`` that says so, instead of an error deep
    inside torch; any other name (``"tpu"``, ``"mps"``) is a ``ValueError`` listing
    :data:`DEVICES`; anything but a string, a ``torch.device`` or ``None`` (a bare
    GPU number, say) is a ``TypeError``.
    """
    if device is None:
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string, one of {DEVICES}, or a torch.device; "
                        f"got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in DEVICES:
        valid = ", ".join(repr(d) for d in DEVICES)
        raise ValueError(f"unknown device {str(device)!r}; valid values are: {valid} "
                         "(or an indexed one such as 'cuda:1')")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was requested but no CUDA GPU is available on "
                         "this machine; use device='cpu' or device='auto'")
    return dev


# --------------------------------------------------------------------------- sizes of a run
#: The most steps a run may plan (``K`` single-level iterations, ``K * T`` lower-level
#: steps of a bilevel run): at a microsecond per step -- far below what any step of this
#: package costs -- 10**10 steps are three hours; the paper's largest run plans
#: 1.5 * 10**5 (Figure 9c, K = 3000, T = 50), the largest preset 4 * 10**4 single-level
#: iterations (Theorems 1-2 at the paper's scale).
MAX_STEPS = 10**10


def check_work(steps: int, what: str, names: str) -> None:
    """``ValueError`` naming the parameters ``names`` when a run plans more than
    :data:`MAX_STEPS` steps (``what`` says which: ``"K * T = ... lower-level steps"``)."""
    if steps > MAX_STEPS:
        raise ValueError(f"{names}: the run would take {what} = {steps:.3g} steps, more than "
                         f"the {MAX_STEPS:.0e} any run can finish; lower {names}")


def available_memory() -> int | None:
    """Bytes of memory available now, or ``None`` when the system does not say:
    ``psutil.virtual_memory().available`` when psutil is installed, else
    ``MemAvailable`` of ``/proc/meminfo`` (Linux), else
    ``SC_PAGE_SIZE * SC_AVPHYS_PAGES`` (free pages only: the most conservative)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(name: str, value: Any, n_bytes: int, what: str) -> None:
    """``ValueError`` naming the parameter ``name`` (of value ``value``) when the
    arrays a run pre-allocates (``what``, ``n_bytes`` in all) do not fit in the memory
    available now (:func:`available_memory`); nothing when the system does not say."""
    avail = available_memory()
    if avail is not None and n_bytes > avail:
        gib = 2.0**30
        raise ValueError(f"{name}={value!r}: the run would pre-allocate {what}, "
                         f"{n_bytes / gib:.1f} GiB, but only {avail / gib:.1f} GiB of memory is "
                         f"available; lower {name}")


#: Seconds a run must have taken before its progress bar appears (``progress=None``).
PROGRESS_DELAY = 10.0


def progress_bar(iterable: Iterable, total: int, desc: str, progress: bool | None):
    """``iterable`` wrapped in a ``tqdm`` bar over its ``total`` iterations, with an estimate
    of the time left.

    ``progress=True``: always shown; ``False``: never; ``None`` (the runners' default):
    shown only for a long run -- after :data:`PROGRESS_DELAY` seconds (tqdm's ``delay``:
    a shorter run prints nothing at all) -- and only where someone watches: when standard
    error is a terminal and the run is not in a worker process (a process pool's or a
    cluster's). So notebooks (whose standard error is no terminal), their saved outputs
    and nbval's comparison of them never see it. The environment variable
    ``BISLS_RUN_PROGRESS`` overrides the default: ``1`` shows the (delayed) bar anywhere,
    ``0`` never.
    """
    if progress is None:
        env = os.environ.get("BISLS_RUN_PROGRESS", "").strip()
        if env in ("0", "1"):
            show = env == "1"
        else:
            import multiprocessing

            isatty = getattr(sys.stderr, "isatty", None)
            show = (callable(isatty) and bool(isatty())
                    and multiprocessing.parent_process() is None)
        if not show:
            return iterable
        from tqdm import tqdm

        # leave=False: the bar of a finished run is cleared, the terminal left as it was.
        return tqdm(iterable, total=total, desc=desc, delay=PROGRESS_DELAY, leave=False)
    if not progress:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc)
