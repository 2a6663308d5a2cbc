r"""Hyper-representation learning on MNIST (Section 4 and Appendix A.2 of the paper).

The upper level learns the embedding layers :math:`w` of a LeNet on validation
data; the lower level learns the last, linear classification layer :math:`c`
on training data, a ridge regression onto one-hot targets:

.. math::

    \min_w F(w) = \frac{1}{2 D_{X_1}} \|\tilde f(X_1; w)\, c^*(w) - Y_1\|^2
    \quad\text{s.t.}\quad
    c^*(w) = \arg\min_c \frac{1}{2 D_{X_2}} \|\tilde f(X_2; w)\, c - Y_2\|^2
             + \frac{\lambda}{2}\|c\|^2 .

Choices the paper leaves open (also listed on the book's replication-choices page):

* **Targets**: one-hot vectors in :math:`\{0, 1\}^{10}`; the squared norm is
  summed over the 10 classes and averaged over the samples.
* **Embedding**: the classic LeNet-5 layout (LeCun et al., 1998) -- conv
  5x5 (6) - ReLU - max-pool - conv 5x5 (16) - ReLU - max-pool - FC 120 - ReLU -
  FC 84 - ReLU; the classifier :math:`c` is the final 84x10 linear map
  (no bias, so :math:`g` is :math:`\lambda`-strongly convex in :math:`c`).
* **lambda** = 0.01 (small ridge term that makes the lower level strongly
  convex, as Assumption 3 asks, without changing the fit much).
* **Data split**: the lower level's training set :math:`(X_2, Y_2)` and the upper
  level's validation set :math:`(X_1, Y_1)` are disjoint parts of the MNIST
  training split; accuracy is also measured on the MNIST test split.
* **Initialisation**: PyTorch's default layer initialisation with the run's
  seed; :math:`c = 0`.
* Batch sizes, T and the CG steps are configuration fields (see the notebooks).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from . import BilevelProblem, keeps_graphs, memo_key

__all__ = ["LeNetEmbedding", "make"]

N_CLASSES = 10


class LeNetEmbedding(nn.Module):
    """LeNet-5's layers up to the 84-dimensional embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
        )
        self.dim = 84

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)


def _split_params(model: nn.Module):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    return names, shapes, sizes


def _split(train, test, n_train: int, n_val: int, n_test: int, dev) -> dict[str, torch.Tensor]:
    """The data on ``dev``: images ``X``, labels ``L`` and one-hot targets ``Y`` of the
    validation set (``X1``, ``L1``, ``Y1``: the ``n_val`` digits after the first ``n_train``
    of the MNIST training split), of the training set (``X2``, ``L2``, ``Y2``: the first
    ``n_train``) and of the test set (``X3``, ``L3``: the first ``n_test`` of the test split)."""

    def onehot(labels):
        return torch.nn.functional.one_hot(labels, N_CLASSES).float()

    X2, L2 = train.images[:n_train].to(dev), train.labels[:n_train].to(dev)
    val = slice(n_train, n_train + n_val)
    X1, L1 = train.images[val].to(dev), train.labels[val].to(dev)
    X3, L3 = test.images[:n_test].to(dev), test.labels[:n_test].to(dev)
    Y1, Y2 = onehot(L1), onehot(L2)
    return dict(X1=X1, L1=L1, Y1=Y1, X2=X2, L2=L2, Y2=Y2, X3=X3, L3=L3)


def _embedding(seed: int, dev):
    """``(model, embed, x0, y0)``: a :class:`LeNetEmbedding` on ``dev`` with PyTorch's
    default initialisation drawn with ``seed`` (the global RNG is left alone),
    ``embed(x, images)`` the embedding with the flat parameters ``x``, ``x0`` the model's
    initial parameters and ``y0 = 0`` the classifier :math:`c`, flat."""
    with torch.random.fork_rng(devices=[]):  # seed the initialisation, leave the global RNG alone
        torch.manual_seed(seed)
        model = LeNetEmbedding()
    model = model.to(dev)
    names, shapes, sizes = _split_params(model)
    x0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    y0 = torch.zeros(model.dim * N_CLASSES, device=dev)

    def embed(x, images):
        params = dict(zip(names, (t.view(s) for t, s in zip(torch.split(x, sizes), shapes))))
        return functional_call(model, params, (images,))

    return model, embed, x0, y0


def _memoized_features(embed, X1, X2):
    """``features(x, which, idx)``: the embedding of the batch ``idx`` (``None``: all) of
    the validation (``which="val"``, ``X1``) or the training set (``X2``)."""
    # The lower level takes T steps (and its line search many trials) at the same x and
    # batch: the embedding of that batch does not depend on y, so the last one computed
    # without a graph to x is reused. The memo is keyed by the tensors' memory and
    # version counters (problems.memo_key), never by their values: a hit costs no host
    # synchronisation and nothing is copied (the memo keeps a reference to x and idx,
    # so their memory cannot be reused while the entry lives). With a graph to x (x
    # requires grad) the embedding is recomputed, except inside problems.keeping_graphs(),
    # where the last one computed there for the same leaf x (the same object) and batch
    # is returned with its graph: the hypergradient and the trial model of condition
    # (14) share their forward passes that way. A batched x (inside torch.func.vmap: the
    # ladders of BilevelConfig.ladder) has no memo key; its embedding is never kept.
    plain: dict = {}
    graphs: dict = {}

    def features(x, which, idx):
        X = X1 if which == "val" else X2
        if x.requires_grad:
            if not (keeps_graphs() and torch.is_grad_enabled()):
                return embed(x, X if idx is None else X[idx])
            hit = graphs.get(which)
            key = memo_key(idx)
            if hit is not None and hit[0] is x and hit[1] == x._version and hit[2] == key \
                    and key is not False:
                return hit[4]
            out = embed(x, X if idx is None else X[idx])
            graphs[which] = (x, x._version, key, idx, out)
            return out
        key = (memo_key(x), memo_key(idx))
        hit = plain.get(which)
        if hit is not None and hit[0] == key and False not in key \
                and memo_key(hit[1]) == key[0] and memo_key(hit[2]) == key[1]:
            return hit[3]
        with torch.no_grad():
            out = embed(x, X if idx is None else X[idx])
        if False not in key:  # not a tensor of a torch.func transform (it cannot outlive it)
            plain[which] = (key, x, idx, out)
        return out

    return features


def _losses(features, dim: int, lam: float, Y1, Y2):
    """``(f, g)`` of the module docstring: the squared loss of the classifier ``y`` (``dim``
    by 10, flat) on the validation set, and on the training set plus the ridge term."""

    def sq_loss(feats, y, targets):
        pred = feats @ y.view(dim, N_CLASSES)
        return 0.5 * ((pred - targets) ** 2).sum(dim=1).mean()

    def f(x, y, idx=None):
        return sq_loss(features(x, "val", idx), y, Y1 if idx is None else Y1[idx])

    def g(x, y, idx=None):
        ridge = 0.5 * lam * (y * y).sum()
        return sq_loss(features(x, "train", idx), y, Y2 if idx is None else Y2[idx]) + ridge

    return f, g


def _metrics(embed, dim: int, data: dict[str, torch.Tensor]):
    """The problem's ``metrics(x, y)``: ``val_loss`` (F on the whole validation set),
    ``val_acc`` and ``test_acc``."""
    X1, Y1, L1, X3, L3 = (data[k] for k in ("X1", "Y1", "L1", "X3", "L3"))

    @torch.no_grad()
    def metrics(x, y):
        c = y.view(dim, N_CLASSES)
        pred_val = embed(x, X1) @ c
        pred_test = embed(x, X3) @ c
        return {
            "val_loss": 0.5 * ((pred_val - Y1) ** 2).sum(dim=1).mean(),
            "val_acc": (pred_val.argmax(1) == L1).float().mean(),
            "test_acc": (pred_test.argmax(1) == L3).float().mean(),
        }

    return metrics


def make(
    *,
    device=None,
    seed: int = 0,
    n_train: int = 2000,
    n_val: int = 1000,
    n_test: int = 1000,
    batch_train: int | None = 256,
    batch_val: int | None = 256,
    lam: float = 0.01,
    data_root: str | None = None,
) -> BilevelProblem:
    """Build the hyper-representation problem.

    Parameters
    ----------
    n_train, n_val, n_test:
        digits in the lower level's training set, the upper level's validation
        set (both from the MNIST training split, disjoint) and the test set.
    batch_train, batch_val:
        samples per stochastic evaluation of ``g`` and ``f`` (``None``: full batch).
    lam:
        ridge coefficient :math:`\\lambda` of the lower level.
    seed:
        seeds the embedding's initialisation (the data split is fixed).

    ``metrics(x, y)`` gives ``val_loss`` (F on the whole validation set),
    ``val_acc`` and ``test_acc``.
    """
    from ..data import load_mnist

    dev = torch.device("cpu") if device is None else torch.device(device)
    train = load_mnist(root=data_root, train=True)
    test = load_mnist(root=data_root, train=False)
    if n_train + n_val > train.n:
        raise ValueError(f"n_train + n_val = {n_train + n_val} exceeds the {train.n} training digits")
    n_test = min(n_test, test.n)

    data = _split(train, test, n_train, n_val, n_test, dev)
    model, embed, x0, y0 = _embedding(seed, dev)
    features = _memoized_features(embed, data["X1"], data["X2"])
    f, g = _losses(features, model.dim, lam, data["Y1"], data["Y2"])

    return BilevelProblem(
        name="hyperrep",
        f=f,
        g=g,
        x0=x0,
        y0=y0,
        n_upper=n_val,
        n_lower=n_train,
        batch_upper=batch_val,
        batch_lower=batch_train,
        f_lower_bound=0.0,
        g_lower_bound=0.0,
        metrics=_metrics(embed, model.dim, data),
        info={"data": train.source, "lam": lam, "dim_x": x0.numel(), "dim_y": y0.numel()},
    )
