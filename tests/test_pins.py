"""One set of versions: environment.yml mirrors the pins of pyproject.toml."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + sum(meta["optional-dependencies"].values(), [])
    pins = {}
    for req in reqs:
        name, _, version = req.partition("==")
        assert version, f"{req!r} in pyproject.toml is not pinned with =="
        pins[name.strip().lower()] = version.strip()
    return pins


def _environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {
        r.partition("==")[0].lower(): r.partition("==")[2]
        for r in pip
        if "==" in r
    }


def test_environment_yml_mirrors_pyproject():
    assert _environment_pins() == _pyproject_pins()


def test_torch_and_torchvision_are_pinned_together():
    pins = _pyproject_pins()
    assert "torch" in pins and "torchvision" in pins
