"""The full MNIST is one setting: a page's ``data_root`` or ``$BISLS_MNIST_ROOT`` (issue 16,
item 7); the default keeps the configurations, hence the cache keys, as they are."""

import pytest

from bisls_core import data
from bisls_core.sweeps import distillation, hyperrep


def test_root_comes_from_the_parameter_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(data.MNIST_ROOT_ENV, raising=False)
    assert data.mnist_root(None) is None
    monkeypatch.setenv(data.MNIST_ROOT_ENV, str(tmp_path))
    assert data.mnist_root(None) == str(tmp_path.resolve())
    other = tmp_path / "other"
    other.mkdir()
    assert data.mnist_root(str(other)) == str(other.resolve())  # the parameter wins
    monkeypatch.setenv(data.MNIST_ROOT_ENV, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=data.MNIST_ROOT_ENV):
        data.mnist_root(None)


@pytest.mark.parametrize("bad, err", [(3, TypeError), (True, TypeError), ("no/such/folder", ValueError)])
def test_a_bad_root_names_the_parameter(bad, err):
    with pytest.raises(err, match="data_root"):
        data.mnist_root(bad)


def test_the_page_says_which_set_it_used(monkeypatch):
    monkeypatch.delenv(data.MNIST_ROOT_ENV, raising=False)
    line = data.mnist_in_use(data.mnist_root(None))
    train, test = data.load_mnist(train=True), data.load_mnist(train=False)
    assert "shipped subset" in line and f"{train.n:,} training" in line and f"{test.n:,} test" in line


@pytest.mark.parametrize("module, method", [(hyperrep, "SGD"), (distillation, "BiSPS")])
def test_default_root_leaves_the_configuration_unchanged(module, method, tmp_path):
    sz = module.sizes("smoke")
    plain = module.config(sz, method)
    assert module.config({**sz, "data_root": None}, method) == plain  # same cache key
    full = module.config({**sz, "data_root": str(tmp_path)}, method)
    assert full["problem_args"] == {**plain["problem_args"], "data_root": str(tmp_path)}


def test_sizes_count_the_digits_of_the_set_in_use(tmp_path, monkeypatch):
    """``n_train``/``n_real`` are checked against the set ``data_root`` names (here a
    stand-in for the full 60,000 training digits), not always the shipped subset."""
    monkeypatch.delenv(data.MNIST_ROOT_ENV, raising=False)
    shipped = data.load_mnist(train=True).n
    real = data.load_mnist

    class Full:
        n = 60_000

    monkeypatch.setattr(data, "load_mnist", lambda root=None, download=False, train=True:
                        Full() if root is not None else real(None, download, train))
    big = shipped + 1000
    with pytest.raises(ValueError, match="n_train"):
        hyperrep.sizes("smoke", n_train=big, n_val=100)
    assert hyperrep.sizes("smoke", n_train=big, n_val=100, data_root=str(tmp_path))["n_train"] == big
    with pytest.raises(ValueError, match="n_real"):
        distillation.sizes("smoke", n_real=big)
    assert distillation.sizes("smoke", n_real=big, data_root=str(tmp_path))["n_real"] == big
