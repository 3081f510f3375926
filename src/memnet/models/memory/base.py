"""What the two memory models share: the single pass's class bookkeeping, the model file's
envelope (format, version, constructor parameters, state), and the shape check of later batches.

:class:`MemoryModel` is the base of MemoryNetwork and LocalMemoryNetwork. A subclass keeps its own
learning (``_learn``), its arrays, and names its file format (``FORMAT_NAME``,
``FORMAT_VERSION``).
"""

from __future__ import annotations

import contextlib
import json

import numpy as np

from memnet.io import atomic_path
from memnet.models.estimator import Estimator, read_model_file
from memnet.validation import check_labels


class MemoryModel(Estimator):
    """A model that learns in one pass by storing memories, and can be saved and loaded."""

    can_save = True
    FORMAT_NAME = ""
    FORMAT_VERSION = 1

    # ---- the pass ---------------------------------------------------------------------------

    @staticmethod
    def _first_labels(y, n_samples, classes) -> tuple[np.ndarray, int]:
        """The first batch's labels (0..K-1) and K: ``classes`` if given, else 0..max(y)."""
        n_classes = None if classes is None else n_classes_from(classes)
        y = check_labels(y, n_samples, zero_based=True, n_classes=n_classes)
        return y, n_classes or int(y.max()) + 1

    def _later_labels(self, y, n_samples, classes) -> np.ndarray:
        """A later batch's labels, among the classes the first batch fixed."""
        if classes is not None and n_classes_from(classes) != self._n_classes:
            raise ValueError(
                f"classes has {len(classes)} entries but the model was started with "
                f"{self._n_classes}; pass the same classes (or none) after the first call"
            )
        return check_labels(y, n_samples, zero_based=True, n_classes=self._n_classes)

    def _check_same_shape(self, X):
        if tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])} (as (C, H, W)) but the model was "
                f"trained on {self.image_shape_}; pass samples of the training shape"
            )

    # ---- the model file ---------------------------------------------------------------------

    def _write(self, path, state: dict, arrays: dict) -> None:
        """Write ``path`` (.npz): the format and its version, the constructor parameters (JSON),
        ``state`` (JSON) and ``arrays``; atomically."""
        self._check_fitted()
        envelope = {
            "format": np.array(self.FORMAT_NAME),
            "format_version": np.array(self.FORMAT_VERSION),
            "config": np.array(json.dumps(plain(self.get_params()))),
            "state": np.array(json.dumps(state)),
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **envelope, **arrays)

    @classmethod
    def _read(cls, path) -> tuple[dict, dict, dict]:
        """(arrays, constructor parameters, state) of a file written by ``_write``; a wrong,
        corrupt or other-version file: ValueError naming it."""
        data = read_model_file(path, cls.FORMAT_NAME, cls.FORMAT_VERSION)
        with corrupt_file(path):
            return data, json.loads(str(data["config"])), json.loads(str(data["state"]))


@contextlib.contextmanager
def corrupt_file(path):
    """Turn what a damaged model file raises while it is read into one ValueError naming it."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(f"{path}: corrupt memnet model file ({err})") from err


def plain(params: dict) -> dict:
    """Constructor parameters as JSON can hold them (numpy scalars as Python numbers)."""
    out = {}
    for k, v in params.items():
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, tuple | list | np.ndarray):
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
        out[k] = v
    return out


def n_classes_from(classes) -> int:
    classes = np.asarray(classes)
    if classes.ndim != 1 or not np.array_equal(classes, np.arange(len(classes))):
        raise ValueError(f"classes must be 0..K-1 in order; got {classes.tolist()}")
    return len(classes)
