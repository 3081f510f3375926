"""The one interface of every model (the Memory Network and each baseline).

An :class:`Estimator` is built from plain constructor arguments (scikit-learn style: the
constructor stores them, ``fit`` checks them), and has ``fit(X, y)``, ``predict(X)``,
``score(X, y)``, ``save(path)``/``load(path)`` where ``can_save`` is True, and the facts that
describe it in a run's metrics: ``uses_backprop``, ``uses_weight_sharing``, ``n_passes``,
``model_bytes`` and :meth:`Estimator.run_facts`.
"""

from __future__ import annotations

import inspect
import zipfile

import numpy as np

from memnet.validation import NotFittedError, check_labels, check_param_names


class Estimator:
    """What every model shares: parameters, scoring, persistence flags and run facts.

    Subclasses define ``fit``, ``predict``, ``_check_params`` (raise ValueError naming a bad
    parameter), ``_is_fitted`` and ``model_bytes``; and, when ``can_save``, ``save`` and ``load``.

    Attributes
    ----------
    name : str
        The model's name in the config, on the command line and in messages.
    uses_backprop : bool
        Whether training propagates errors backwards.
    uses_weight_sharing : bool
        Whether weights are shared (convolutions).
    can_save : bool
        Whether ``save`` and ``load`` exist; ask before training, not after.
    n_passes : int
        How many passes over the training data ``fit`` makes.
    model_bytes : int
        Bytes of the learnt state (once fitted).
    """

    name = ""
    uses_backprop = False
    uses_weight_sharing = False
    can_save = False

    # ---- parameters ----------------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    @classmethod
    def _owner(cls) -> str:
        return f"the {cls.name} model"

    @classmethod
    def from_params(cls, params: dict, **fixed):
        """A checked model from a dict of parameters (as the config and the command line give
        them); ``fixed``: parameters the caller sets (e.g. the run's seed), which ``params``
        must not name. Unknown names and bad values: one ValueError naming the parameter."""
        if not isinstance(params, dict):
            raise ValueError(f"the parameters of {cls._owner()} must be a dict; got {params!r}")
        clash = sorted(set(params) & set(fixed))
        if clash:
            raise ValueError(
                f"{cls._owner()}: {', '.join(map(repr, clash))} is set by the run, not by the "
                "model's parameters; remove it from them"
            )
        check_param_names(cls._owner(), params, [p for p in cls._param_names() if p not in fixed])
        model = cls(**params, **fixed)
        model._check_params()
        return model

    def get_params(self, deep=True) -> dict:
        """The constructor parameters, as scikit-learn's get_params (so clone() works)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters by name (checked when the model is next fitted)."""
        check_param_names(self._owner(), params, self._param_names())
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {n: p.default for n, p in inspect.signature(type(self)).parameters.items()}
        changed = [f"{n}={v!r}" for n, v in self.get_params().items() if v != defaults[n]]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_params(self) -> None:
        raise NotImplementedError

    def check_input_shape(self, image_shape) -> None:
        """Raise ValueError naming the parameter that does not fit images of ``image_shape``
        (C, H, W), before any data is read (config validation asks, for each planned run).
        A model whose parameters fit any image accepts every shape."""

    def for_warm_up(self) -> Estimator:
        """The model the pipeline's untimed warm-up fit uses (memnet.pipeline.execute.warm_up):
        itself, or a smaller copy where the real size needs no warming (the RF-ELM)."""
        return self

    # ---- fitting and predicting ----------------------------------------------------------

    def fit(self, X, y):
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        raise NotImplementedError

    def score(self, X, y) -> float:
        """Accuracy of ``predict(X)`` against ``y``."""
        predicted = self.predict(X)
        return float(np.mean(predicted == check_labels(y, len(predicted))))

    def _is_fitted(self) -> bool:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(
                f"this {type(self).__name__} ({self.name}) is not fitted yet; call fit first"
            )

    # ---- facts and files -----------------------------------------------------------------

    @property
    def n_passes(self) -> int:
        return 1

    @property
    def model_bytes(self) -> int:
        raise NotImplementedError

    def run_facts(self, n_classes: int) -> dict:
        """What a run's metrics record about the fitted model (None where it does not apply):
        n_born and births_per_class (neurons, and neurons per class of 0..n_classes-1),
        model_bytes, uses_backprop, uses_weight_sharing and n_passes."""
        self._check_fitted()
        return {
            "n_born": None,
            "births_per_class": None,
            "model_bytes": int(self.model_bytes),
            "uses_backprop": bool(self.uses_backprop),
            "uses_weight_sharing": bool(self.uses_weight_sharing),
            "n_passes": int(self.n_passes),
        }

    def save(self, path) -> None:
        """Write the fitted model to ``path`` (only where ``can_save``)."""
        raise ValueError(
            f"{self._owner()} cannot be saved (can_save is False); ask for no model file"
        )

    @classmethod
    def load(cls, path):
        """Read a model written by save() (only where ``can_save``)."""
        raise ValueError(f"{cls._owner()} cannot be loaded (can_save is False)")


def read_model_file(path, format_name: str, format_version: int) -> dict:
    """The arrays of a model file written by a ``save``, after checking its marker and version;
    an unreadable, foreign or other-version file: one ValueError that names it."""
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {name: f[name] for name in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable memnet model file ({err})") from err
    if str(data.get("format", "")) != format_name:
        raise ValueError(
            f"{path}: not a memnet model file of this kind (no '{format_name}' marker)"
        )
    version = int(data["format_version"]) if "format_version" in data else None
    if version != format_version:
        raise ValueError(
            f"{path}: model file format version {version}; this memnet reads version "
            f"{format_version} (re-train and save the model with this version)"
        )
    return data
