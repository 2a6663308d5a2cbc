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
from typing import Any

import numpy as np
import torch

__all__ = ["DEVICES", "check_bool", "check_choice", "check_int", "check_number",
           "check_positive", "resolve_device"]

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
