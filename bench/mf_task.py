"""The multi-fidelity benchmark's task: scikit-learn's MLPClassifier on digits, epochs as budget.

One epoch is one ``partial_fit`` pass over the training split (Adam, mini-batches of
the trial's batch size); the loss is the validation error after ``epochs`` epochs. The
checkpoint is the pickled model with its epoch count, so a promoted configuration
continues where its last rung stopped instead of training again from scratch.

Spaces: learning rate (log 1e-4..1e-1), width (16..256), alpha (log 1e-6..1e-1) and
batch size (16..256). The data are scikit-learn's bundled digits (1,797 8x8 images):
1,200 for training, the rest for validation, one fixed split.
"""
from __future__ import annotations

import os
import pickle
from functools import lru_cache
from typing import Any

import numpy as np

EPOCHS = (1, 81)
ETA = 3


def spec() -> dict[str, Any]:
    from shadho import spaces

    return {"lr": spaces.log10_uniform(-4, -1), "width": spaces.randint(16, 257),
            "alpha": spaces.log10_uniform(-6, -1), "batch": spaces.randint(16, 257)}


@lru_cache(maxsize=1)
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(y))
    tr, va = order[:1200], order[1200:]
    return X[tr], y[tr], X[va], y[va]


def _model(p: dict[str, Any]) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(int(p["width"]),), learning_rate_init=float(p["lr"]),
                         alpha=float(p["alpha"]), batch_size=int(p["batch"]), random_state=0)


def train(p: dict[str, Any], epochs: int, checkpoint: str | None = None) -> float:
    """Validation error of ``p`` after ``epochs`` epochs, continuing from ``checkpoint``'s
    model when it holds one (a folder; written back after training)."""
    import warnings

    X, y, Xv, yv = data()
    path = os.path.join(checkpoint, "model.pkl") if checkpoint else None
    model, done = None, 0
    if path and os.path.exists(path):
        try:
            with open(path, "rb") as fh:
                model, done = pickle.load(fh)
        except Exception:  # noqa: BLE001 - a bad checkpoint means start from scratch
            model, done = None, 0
    if model is None or done > epochs:
        model, done = _model(p), 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(done, int(epochs)):
            model.partial_fit(X, y, classes=np.arange(10))
    if path:
        with open(path + ".tmp", "wb") as fh:
            pickle.dump((model, int(epochs)), fh)
        os.replace(path + ".tmp", path)
    return float(1.0 - model.score(Xv, yv))
