"""A researcher's own estimator on memnet's interface: any class with scikit-learn's ``fit`` and
``predict`` (a plain scikit-learn estimator included), named by the config's ``model_families``.

:class:`ForeignEstimator` flattens the images to ``(n, C*H*W)`` float32 rows, seeds the class
through ``random_state`` when its constructor takes one, and learns a class-incremental stream with
the class's ``partial_fit`` when it has one (else it refits on each task alone, and says so in its
docstring). Facts the class does not declare as attributes (``uses_backprop``,
``uses_weight_sharing``, ``n_passes``, ``model_bytes``) are unknown: None in the metrics, "unknown"
in the tables.
"""

from __future__ import annotations

import inspect

import numpy as np

from memnet.models.estimator import Estimator
from memnet.validation import check_images, check_labels

FACTS = ("uses_backprop", "uses_weight_sharing", "n_passes", "model_bytes")


class ForeignEstimator(Estimator):
    """``cls(**params)``, run as a memnet estimator.

    Parameters
    ----------
    cls : type
        The estimator class.
    params : dict
        Its constructor parameters (from the config); one the class refuses is a ValueError.
    random_state : int
        The run's seed, given to the class when its constructor has ``random_state`` and the
        params do not set it.
    name : str
        The family's name (in messages).
    """

    can_save = False

    def __init__(self, cls, params: dict, random_state: int = 0, name: str = ""):
        self.cls = cls
        self.params = dict(params)
        self.random_state = random_state
        self.name = name or cls.__name__
        accepted = inspect.signature(cls).parameters
        kwargs = dict(self.params)
        if "random_state" in accepted and "random_state" not in kwargs:
            kwargs["random_state"] = random_state
        try:
            self.model_ = cls(**kwargs)
        except TypeError as exc:
            raise ValueError(
                f"{self._owner()}: {cls.__name__} refuses its parameters ({exc})"
            ) from None
        self._fitted = False

    def _owner(self) -> str:
        return f"model family '{self.name}'"

    def get_params(self, deep=True) -> dict:
        return self.model_.get_params() if hasattr(self.model_, "get_params") else dict(self.params)

    def set_params(self, **params):
        if "expected_samples" in params:  # memnet's stream length: not a foreign parameter
            params.pop("expected_samples")
        if params:
            self.model_.set_params(**params)
        return self

    @staticmethod
    def _rows(X) -> np.ndarray:
        X = check_images(X, owner="a foreign estimator", dtype=np.float32)
        return np.ascontiguousarray(X.reshape(len(X), -1), dtype=np.float32)

    def fit(self, X, y):
        X = self._rows(X)
        self.model_.fit(X, check_labels(y, len(X)))
        self._fitted = True
        return self

    def partial_fit(self, X, y, classes=None):
        """The class's own ``partial_fit`` when it has one; else ``fit`` on this batch alone."""
        X = self._rows(X)
        y = check_labels(y, len(X))
        if hasattr(self.model_, "partial_fit"):
            self.model_.partial_fit(X, y, classes=classes)
        else:
            self.model_.fit(X, y)
        self._fitted = True
        return self

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.model_.predict(self._rows(X))).astype(np.int64)

    def _is_fitted(self) -> bool:
        return self._fitted

    def run_facts(self, n_classes: int) -> dict:
        self._check_fitted()
        facts = {fact: getattr(self.model_, fact, None) for fact in FACTS}
        return {"n_born": None, "births_per_class": None, **facts}
