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
(``pyproject.toml``) and selected with the environment variable
``JUPYTER_DEFAULT_PROVISIONER_NAME=bisls-encrypted-provisioner``, which the
Makefile exports and ``scripts/book.py`` sets.
"""

from __future__ import annotations

from typing import Any

import zmq
from jupyter_client.provisioning import LocalProvisioner

NAME = "bisls-encrypted-provisioner"


class EncryptedProvisioner(LocalProvisioner):
    """:class:`~jupyter_client.provisioning.LocalProvisioner` with CurveZMQ transport
    encryption on by default (``transport_encryption="auto"``)."""

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        manager = self.parent
        if (zmq.has("curve") and manager is not None
                and getattr(manager, "transport_encryption", "auto") == "disabled"):
            kwargs.setdefault("transport_encryption", "auto")
        return await super().pre_launch(**kwargs)
