"""Input checks shared by every estimator (the Memory Network and the baselines).

Each check raises one ``ValueError`` that names the parameter or array, says what was wrong
(with the value or dtype or shape it got) and what is expected, and returns the checked value.

- :func:`check_images` and :func:`check_labels`: the arrays given to fit, predict and score;
- :func:`check_int`, :func:`check_real`, :func:`check_bool`, :func:`check_choice` and
  :func:`check_random_state`: constructor parameters;
- :func:`check_param_names`: a dict of parameters against those an estimator accepts (the
  command line and the config pass parameters as such a dict).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

FINITE_CHUNK = 4096  # samples per NaN/inf test: no full-size boolean temporary


class NotFittedError(ValueError, RuntimeError):
    """A model was used (predict, a fitted attribute, save) before it was fitted."""


def check_images(X, *, name="X", owner="", flat=True, integers="uint8", dtype=None) -> np.ndarray:
    """``X`` as an array of shape (n, C, H, W), after checking it; (n, d) is one 1 x d channel.

    Parameters
    ----------
    X : array-like
        The samples, of shape (n, C, H, W), or (n, d) when ``flat``.
    name : str
        The array's name in messages.
    owner : str
        Who checks, for messages (e.g. ``"the cnn baseline"``); empty: no mention.
    flat : bool
        Whether (n, d) is accepted.
    integers : {"uint8", "any"}
        Which integer dtypes are accepted beside floating point: ``"uint8"`` (the Memory
        Network scales them by 1/255) or any integer dtype (taken as they are).
    dtype : numpy dtype, optional
        Convert to it (a copy if needed) before the NaN/inf check; None: keep X's dtype (a view
        when possible).

    Returns
    -------
    numpy.ndarray
        Four-dimensional, of ``dtype`` if given.
    """
    X = np.asarray(X)
    where = f" for {owner}" if owner else ""
    shapes = "(n, C, H, W) or (n, d)" if flat else "(n, C, H, W)"
    if X.ndim not in ((2, 4) if flat else (4,)):
        raise ValueError(
            f"{name} must have shape {shapes}{where}; got {X.ndim} dimensions {X.shape}"
        )
    floating = np.issubdtype(X.dtype, np.floating)
    if integers == "uint8":
        ok, kinds = (
            floating or X.dtype == np.uint8,
            "uint8 (0..255, scaled by 1/255) or floating point",
        )
    else:
        ok = floating or (np.issubdtype(X.dtype, np.integer) and X.dtype != np.bool_)
        kinds = "integers or floating point"
    if not ok:
        raise ValueError(
            f"{name} must hold real numbers{where}: {kinds}; got dtype {X.dtype} "
            f"(convert it, e.g. with {name}.astype(np.float32))"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no samples (shape {X.shape}); pass at least one")
    if X.size == 0:
        raise ValueError(f"{name} has no features: shape {X.shape}; each sample needs at least one")
    if X.ndim == 2:
        X = X.reshape(len(X), 1, 1, X.shape[1])
    if dtype is not None:
        with np.errstate(over="ignore"):  # a value out of range becomes inf: refused below
            X = np.asarray(X, dtype=dtype)
    if not np.issubdtype(X.dtype, np.integer):
        for s in range(0, len(X), FINITE_CHUNK):
            if not np.isfinite(X[s : s + FINITE_CHUNK]).all():
                raise ValueError(
                    f"{name} contains NaN or infinite values; clean or impute them first"
                )
    return X


def check_labels(y, n_samples, *, name="y", zero_based=False, n_classes=None) -> np.ndarray:
    """``y`` as int64, after checking it: one integer label per sample.

    Parameters
    ----------
    y : array-like
        The labels.
    n_samples : int
        How many there must be (the samples of X).
    name : str
        The array's name in messages.
    zero_based : bool
        Whether the labels must be class indices 0..K-1 (no negative label).
    n_classes : int, optional
        K, when already fixed: labels must be < K.
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_samples:
        raise ValueError(
            f"{name} must have shape ({n_samples},), one label per sample of X; got shape {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        classes = "class indices 0..K-1" if zero_based else "class labels"
        raise ValueError(
            f"{name} must hold integer {classes}; got dtype {y.dtype} (convert it, e.g. with "
            f"{name}.astype(int), or encode the labels)"
        )
    if zero_based and len(y) and y.min() < 0:
        raise ValueError(f"{name} has a negative label ({y.min()}); classes are 0..K-1")
    if n_classes is not None and len(y) and y.max() >= n_classes:
        raise ValueError(
            f"{name} has label {y.max()} but the model has {n_classes} classes "
            f"(0..{n_classes - 1}); pass all classes to the first partial_fit call"
        )
    return y.astype(np.int64, copy=False)


def _or_none(text, allow_none):
    return f"{text} or None" if allow_none else text


def check_int(name, value, *, minimum, allow_none=False):
    """``value`` if it is an integer (not a bool) >= ``minimum`` (or None, if allowed)."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        ok = False
    else:
        ok = value >= minimum
    if not ok:
        raise ValueError(
            f"{name} must be {_or_none(f'an integer >= {minimum}', allow_none)}; got {value!r}"
        )
    return value


def check_real(
    name, value, *, low, high=math.inf, low_open=False, high_open=False, allow_none=False
):
    """``value`` if it is a finite real number (not a bool) in the interval from ``low`` to
    ``high`` (open or closed at each end), or None if allowed."""
    if value is None and allow_none:
        return value
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if ok:
        ok = math.isfinite(value) and (low < value if low_open else low <= value)
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        if math.isinf(high) and low == 0:
            what = "a positive number" if low_open else "a number >= 0"
        elif math.isinf(high):
            what = f"a number {'>' if low_open else '>='} {low}"
        else:
            what = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be {_or_none(what, allow_none)}; got {value!r}")
    return value


def check_bool(name, value):
    """``value`` if it is True or False (a numpy bool too)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def check_choice(name, value, choices: Iterable[str]):
    """``value`` if it is one of the strings ``choices``."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} {value!r} is unknown; choose one of {listed}")
    return value


def check_random_state(value, *, name="random_state", allow_none=True):
    """``value`` if it is a seed: an integer >= 0 (or None, if allowed: fresh randomness)."""
    return check_int(name, value, minimum=0, allow_none=allow_none)


def check_param_names(owner, params, allowed):
    """Refuse the names in ``params`` that are not in ``allowed`` (the parameters of ``owner``,
    e.g. ``"memnet"`` or ``"baseline 'knn'"``), naming them and the allowed ones."""
    allowed = list(allowed)
    unknown = [name for name in params if name not in allowed]
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(
            f"unknown parameter{plural} {names} for {owner}; allowed parameters: "
            f"{sorted(allowed) or 'none'} (fix the spelling or remove it)"
        )


__all__ = [
    "NotFittedError",
    "check_bool",
    "check_choice",
    "check_images",
    "check_int",
    "check_labels",
    "check_param_names",
    "check_random_state",
    "check_real",
]


def to_unit_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1] (what load gives)."""
    out = x.astype(np.float32)
    out *= np.float32(1 / 255)
    return out
