"""Encrypted kernel connections for the project's notebook runs (papermill, nbval, the book).

ipykernel 7.4 warns at every start that the kernel "is running over TCP without
encryption" unless the kernel manager provisions CurveZMQ keys for it. The
setting that does so, ``KernelManager.transport_encryption`` (jupyter_client >=
8.9), is a traitlet of each manager, and papermill, nbval and myst-nb create their
managers without reading any configuration file. A kernel provisioner is the
hook jupyter_client applies to every manager: this one is the standard local
provisioner with ``transport_encryption="auto"`` (keys are provisioned when the
kernelspec declares ``"curve"`` support, as ipykernel's does, so the five sockets
are encrypted and the kernel has nothing to warn about).

It is registered under the entry point group ``jupyter_client.kernel_provisioners``
(``pyproject.toml``) and selected in two ways:

* by the ``python3`` kernelspec of the environment,
  ``<sys.prefix>/share/jupyter/kernels/python3/kernel.json`` (ipykernel's, with
  ``"kernel_provisioner": {"provisioner_name": "bisls-encrypted-provisioner"}`` in
  its ``metadata``, which jupyter_client reads), written on install by
  ``python -m bisls_core._kernel --install`` (:func:`install`): a plain
  ``papermill ... -k python3`` or ``jupyter lab`` of the venv is encrypted too;
* by the environment variable
  ``JUPYTER_DEFAULT_PROVISIONER_NAME=bisls-encrypted-provisioner``, which the
  Makefile exports and ``scripts/book.py`` sets (any kernelspec without a provisioner).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.provisioning import LocalProvisioner

NAME = "bisls-encrypted-provisioner"
#: The kernelspec that :func:`install` writes (the one papermill, nbval and the book use).
KERNEL = "python3"


class EncryptedProvisioner(LocalProvisioner):
    """:class:`~jupyter_client.provisioning.LocalProvisioner` with CurveZMQ transport
    encryption on by default (``transport_encryption="auto"``)."""

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        manager = self.parent
        if (zmq.has("curve") and manager is not None
                and getattr(manager, "transport_encryption", "auto") == "disabled"):
            kwargs.setdefault("transport_encryption", "auto")
        return await super().pre_launch(**kwargs)


def kernel_spec() -> dict[str, Any]:
    """ipykernel's ``python3`` kernelspec with this provisioner in its ``metadata``.

    ``argv`` starts with ``python``, as in the kernelspec ipykernel's wheel installs:
    jupyter_client runs it with its own interpreter, so the spec survives a moved venv."""
    from ipykernel.kernelspec import get_kernel_dict

    spec = get_kernel_dict()
    spec["argv"] = ["python", *spec["argv"][1:]]
    spec["metadata"] = {**spec.get("metadata", {}),
                        "kernel_provisioner": {"provisioner_name": NAME}}
    return spec


def install(prefix: str | Path | None = None) -> Path:
    """Write :func:`kernel_spec` (with ipykernel's logos) as the ``python3`` kernelspec
    of ``prefix`` (default ``sys.prefix``, the venv), replacing ipykernel's; returns
    the kernelspec's folder."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    spec = kernel_spec()
    with tempfile.TemporaryDirectory() as tmp:
        src = write_kernel_spec(Path(tmp) / KERNEL, overrides=spec)
        dest = KernelSpecManager().install_kernel_spec(
            src, KERNEL, prefix=str(sys.prefix if prefix is None else prefix))
    return Path(dest)


def installed(prefix: str | Path | None = None) -> bool:
    """Whether the ``python3`` kernelspec of ``prefix`` (default ``sys.prefix``) selects
    this provisioner."""
    path = (Path(sys.prefix if prefix is None else prefix)
            / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json")
    try:
        meta = json.loads(path.read_text()).get("metadata", {})
    except (OSError, ValueError):
        return False
    return meta.get("kernel_provisioner", {}).get("provisioner_name") == NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bisls_core._kernel",
        description="Install the python3 kernelspec that selects the encrypted provisioner.")
    parser.add_argument("--install", action="store_true",
                        help="write <prefix>/share/jupyter/kernels/python3/kernel.json")
    parser.add_argument("--prefix", default=None, help="default: sys.prefix (the venv)")
    args = parser.parse_args(argv)
    if not args.install:
        parser.print_help()
        return 0
    dest = install(args.prefix)
    print(f"kernelspec {KERNEL} -> {dest} (provisioner {NAME})")
    if args.prefix is None:  # a kernelspec found earlier on the Jupyter path would win
        from jupyter_client.kernelspec import KernelSpecManager

        found = KernelSpecManager().find_kernel_specs().get(KERNEL)
        if found and Path(found).resolve() != dest.resolve():
            print(f"warning: the {KERNEL} kernelspec in {found} comes first on the Jupyter "
                  "path and does not select the provisioner; remove it or set "
                  f"JUPYTER_DEFAULT_PROVISIONER_NAME={NAME}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
