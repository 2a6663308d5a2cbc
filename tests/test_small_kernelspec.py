"""A plain papermill run (no ``JUPYTER_DEFAULT_PROVISIONER_NAME``) is encrypted and quiet.

The venv's ``python3`` kernelspec selects the encrypted provisioner in its metadata
(``python -m bisls_core._kernel --install``, run on install), so the README's
``papermill ... -k python3`` gets no "running over TCP without encryption" warning
from ipykernel (issue 22)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from bisls_core import _kernel

PAPERMILL = Path(sys.executable).parent / "papermill"


def test_install_writes_ipykernels_spec_with_the_provisioner(tmp_path):
    assert not _kernel.installed(tmp_path)
    dest = _kernel.install(tmp_path)
    assert dest == tmp_path / "share" / "jupyter" / "kernels" / "python3"
    spec = json.loads((dest / "kernel.json").read_text())
    assert spec["metadata"]["kernel_provisioner"] == {"provisioner_name": _kernel.NAME}
    assert spec["metadata"]["supported_encryption"] == ["curve"]  # ipykernel's, kept
    assert spec["argv"][:3] == ["python", "-m", "ipykernel_launcher"]
    assert (dest / "logo-64x64.png").is_file()
    assert _kernel.installed(tmp_path)
    _kernel.install(tmp_path)  # again: replaces it
    assert _kernel.installed(tmp_path)


def test_the_module_installs_from_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bisls_core._kernel", "--install",
                           "--prefix", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _kernel.installed(tmp_path)


def test_papermill_without_the_variable_is_encrypted(tmp_path):
    if not _kernel.installed():  # a venv made before the install step ran it
        _kernel.install()
    from jupyter_client.kernelspec import KernelSpecManager

    found = Path(KernelSpecManager().find_kernel_specs()["python3"])
    assert found == Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3", (
        f"another python3 kernelspec comes first on the Jupyter path: {found}")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nbformat.write(nb, tmp_path / "in.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_DEFAULT_PROVISIONER_NAME"}
    proc = subprocess.run([str(PAPERMILL), str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"),
                           "-k", "python3", "--no-progress-bar"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "42" in (tmp_path / "out.ipynb").read_text()
    assert "without encryption" not in proc.stderr, proc.stderr[-2000:]
