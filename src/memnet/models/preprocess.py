"""Image preprocessing for the memory networks: deskewing, colour transforms, standardising and
ZCA whitening, each fitted (where it has statistics) in one streaming pass over the data.

``make_preprocessor(names)`` builds a chain of steps, applied in order; each step maps float32
images (n, C, H, W) to float32 images. Steps with statistics (``standardise``, ``zca``) gather
them chunk by chunk (``partial_fit``: running means and covariances merged exactly, Chan et
al.'s pairwise update, in float64), so fitting reads the data once and never holds more than a
chunk of it; the others are stateless.

Steps:

- ``deskew``: the standard moment-based deskewing. The image's centroid (r, c) and its second
  moments (over the sum of its channels) give the skew alpha = cov(row, col) / var(row); the
  output pixel (i, j) reads the input at (i - ci + r, j - cj + c + alpha (i - ci)), with
  (ci, cj) = ((H - 1) / 2, (W - 1) / 2) the image's centre, by bilinear interpolation (zero
  outside). The principal axis becomes vertical and the centroid moves to the centre. An
  image with no positive mass is left as it is. Meant for non-negative intensities.
- ``grayscale``: 3 channels (RGB) to 1, luma weights 0.299, 0.587, 0.114 (ITU-R BT.601).
- ``opponent``: RGB to opponent colours: (R - G) / sqrt 2, (R + G - 2B) / sqrt 6,
  (R + G + B) / sqrt 3 (an orthonormal change of basis).
- ``standardise``: each channel minus its mean, divided by its standard deviation (over all
  pixels and images of the fitting data; a constant channel is only centred).
- ``zca``: ZCA whitening of the whole image vector: (x - mean) @ W, W = U diag(1 / sqrt(lambda
  + eps)) U^T from the eigen-decomposition of the covariance (``zca_eps``, default 1e-2 for data
  in [0, 1]; 0 whitens exactly when the covariance has full rank).
"""

from __future__ import annotations

import numpy as np
from numba import njit

STEPS = ("deskew", "grayscale", "opponent", "standardise", "zca")
CHUNK = 4096
LUMA = np.array([0.299, 0.587, 0.114])


@njit(cache=True, nogil=True)
def _deskew(X, out):
    n, n_ch, h, w = X.shape
    ci = (h - 1) / 2.0
    cj = (w - 1) / 2.0
    for s in range(n):
        total = 0.0
        sr = 0.0
        sc = 0.0
        for ch in range(n_ch):
            for i in range(h):
                for j in range(w):
                    v = np.float64(X[s, ch, i, j])
                    total += v
                    sr += i * v
                    sc += j * v
        if not total > 0.0:
            out[s] = X[s]
            continue
        r0 = sr / total
        c0 = sc / total
        var_r = 0.0
        cov = 0.0
        for ch in range(n_ch):
            for i in range(h):
                for j in range(w):
                    v = np.float64(X[s, ch, i, j])
                    var_r += (i - r0) * (i - r0) * v
                    cov += (i - r0) * (j - c0) * v
        alpha = cov / var_r if var_r > 0.0 else 0.0
        for i in range(h):
            src_i = i - ci + r0
            i0 = int(np.floor(src_i))
            fi = src_i - i0
            for j in range(w):
                src_j = j - cj + c0 + alpha * (i - ci)
                j0 = int(np.floor(src_j))
                fj = src_j - j0
                if 0 <= i0 and i0 + 1 < h and 0 <= j0 and j0 + 1 < w:
                    # all four taps inside: the same sums in the same order (a zero weight's
                    # term adds an exact 0, which the general loop below skips)
                    w0 = 1.0 - fi
                    v0 = 1.0 - fj
                    for ch in range(n_ch):
                        acc = 0.0
                        acc += w0 * v0 * np.float64(X[s, ch, i0, j0])
                        acc += w0 * fj * np.float64(X[s, ch, i0, j0 + 1])
                        acc += fi * v0 * np.float64(X[s, ch, i0 + 1, j0])
                        acc += fi * fj * np.float64(X[s, ch, i0 + 1, j0 + 1])
                        out[s, ch, i, j] = acc
                    continue
                for ch in range(n_ch):
                    acc = 0.0
                    for di in range(2):
                        ii = i0 + di
                        if ii < 0 or ii >= h:
                            continue
                        wi = fi if di == 1 else 1.0 - fi
                        if wi == 0.0:
                            continue
                        for dj in range(2):
                            jj = j0 + dj
                            if jj < 0 or jj >= w:
                                continue
                            wj = fj if dj == 1 else 1.0 - fj
                            if wj == 0.0:
                                continue
                            acc += wi * wj * np.float64(X[s, ch, ii, jj])
                    out[s, ch, i, j] = acc


def deskew(X) -> np.ndarray:
    """Deskewed copies of images X (n, C, H, W), float32 (see the module docstring)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 4:
        raise ValueError(
            f"deskew needs images of shape (n, C, H, W); got an array of shape {X.shape}"
        )
    out = np.empty_like(X)
    _deskew(X, out)
    return out


def _need_rgb(X, step):
    if X.shape[1] != 3:
        raise ValueError(f"{step} needs colour images with 3 channels (RGB); got {X.shape[1]}")


def grayscale(X) -> np.ndarray:
    """(n, 3, H, W) RGB to (n, 1, H, W) luma, float32."""
    _need_rgb(X, "grayscale")
    out = np.tensordot(LUMA, X.astype(np.float64), axes=([0], [1]))
    return out[:, None].astype(np.float32)


OPPONENT = np.array(
    [
        [1 / np.sqrt(2), -1 / np.sqrt(2), 0.0],
        [1 / np.sqrt(6), 1 / np.sqrt(6), -2 / np.sqrt(6)],
        [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
    ]
)


def opponent(X) -> np.ndarray:
    """(n, 3, H, W) RGB to opponent colours (n, 3, H, W), float32."""
    _need_rgb(X, "opponent")
    out = np.einsum("kc,nchw->nkhw", OPPONENT, X.astype(np.float64))
    return out.astype(np.float32)


class _Moments:
    """Running count, mean and centred second moments (a matrix, or per-row sums) of rows."""

    def __init__(self, full):
        self.full = full
        self.n = 0
        self.mean = None
        self.m2 = None

    def add(self, rows):
        """Merge a chunk of rows (n, d) into the running moments (Chan et al.)."""
        rows = np.asarray(rows, np.float64)
        nb = len(rows)
        if nb == 0:
            return
        mean_b = rows.mean(axis=0)
        centred = rows - mean_b
        m2_b = centred.T @ centred if self.full else (centred * centred).sum(axis=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        total = self.n + nb
        delta = mean_b - self.mean
        extra = np.outer(delta, delta) if self.full else delta * delta
        self.m2 = self.m2 + m2_b + extra * (self.n * nb / total)
        self.mean = self.mean + delta * (nb / total)
        self.n = total

    def covariance(self):
        return self.m2 / self.n


class Preprocessor:
    """A chain of preprocessing steps (see the module docstring), fitted in one streaming pass.

    Parameters
    ----------
    steps : sequence of str
        Names from ``STEPS``, applied in order.
    zca_eps : float
        Regulariser added to the covariance's eigenvalues by ``zca``.
    """

    def __init__(self, steps=(), zca_eps=1e-2):
        for step in steps:
            if step not in STEPS:
                raise ValueError(f"unknown preprocessing step {step!r}; expected one of {STEPS}")
        self.steps = tuple(steps)
        if isinstance(zca_eps, bool) or not isinstance(zca_eps, int | float) or not zca_eps >= 0:
            raise ValueError(f"zca_eps must be a number >= 0 (added to each eigenvalue); got "
                             f"{zca_eps!r}")  # fmt: skip
        self.zca_eps = float(zca_eps)
        self._moments = {}  # step index -> _Moments, while fitting
        self._params = {}  # step index -> dict of arrays, once fitted
        self._fitting = None

    def output_shape(self, image_shape) -> tuple[int, int, int]:
        """The (C, H, W) that the steps turn images of ``image_shape`` (C, H, W) into; a
        ValueError naming the first step that does not fit them (before any data is read)."""
        c, h, w = (int(v) for v in image_shape)
        for step in self.steps:
            if step in ("grayscale", "opponent") and c != 3:
                raise ValueError(f"preprocess step {step!r} needs colour images with 3 channels "
                                 f"(RGB); these images have {c}")  # fmt: skip
            c = 1 if step == "grayscale" else c
        return c, h, w

    @property
    def stateful(self) -> bool:
        return any(s in ("standardise", "zca") for s in self.steps)

    @property
    def fitted(self) -> bool:
        return all(
            i in self._params for i, s in enumerate(self.steps) if s in ("standardise", "zca")
        )

    def fit(self, X, chunk=CHUNK) -> Preprocessor:
        """Gather every step's statistics in one pass over X, chunk by chunk.

        A step's statistics are those of the data as the steps before it leave it; they are
        merged chunk by chunk, and each stateful step is finished (frozen) once the pass is
        over, then the next stateful step needs the data again: a chain with k stateful steps
        reads X k times (one for the usual chains, which have at most one).
        """
        X = np.asarray(X)
        if self.stateful and (X.ndim != 4 or len(X) == 0):
            raise ValueError(f"Preprocessor.fit needs at least one image (n, C, H, W) to gather "
                             f"the statistics of {'+'.join(self.steps)}; got shape {X.shape}")  # fmt: skip
        self._params = {}
        stateful = [i for i, s in enumerate(self.steps) if s in ("standardise", "zca")]
        for i in stateful:
            self._moments = {i: _Moments(full=self.steps[i] == "zca")}
            for s in range(0, len(X), chunk):
                self._apply(_as_float(X[s : s + chunk]), upto=i, gather=i)
            self._finish(i)
        self._moments = {}
        return self

    def _finish(self, i):
        mom = self._moments[i]
        if self.steps[i] == "standardise":
            std = np.sqrt(mom.m2 / mom.n)
            scale = np.ones_like(std)
            scale[std > 0] = 1.0 / std[std > 0]
            self._params[i] = {"mean": mom.mean, "scale": scale}
        else:
            lam, u = np.linalg.eigh(mom.covariance())
            lam = np.maximum(lam, 0.0) + self.zca_eps
            inv = np.zeros_like(lam)
            inv[lam > 0] = 1.0 / np.sqrt(lam[lam > 0])
            self._params[i] = {"mean": mom.mean, "matrix": (u * inv) @ u.T}

    def transform_in_chunks(self, X, chunk=CHUNK, run=None) -> np.ndarray:
        """transform, ``chunk`` images at a time into one float32 array: the float64 work of
        the statistical steps stays the size of a chunk, not of X. ``run``: a function that
        runs a list of tasks (each fills its chunk; threads may share them), else in turn."""
        if run is None and len(X) <= chunk:
            return self.transform(X)
        first = self.transform(X[:1])
        out = np.empty((len(X), *first.shape[1:]), np.float32)

        def fill(s):
            out[s : s + chunk] = self.transform(X[s : s + chunk])

        tasks = [lambda s=s: fill(s) for s in range(0, len(X), chunk)]
        if run is None:
            for task in tasks:
                task()
        else:
            run(tasks)
        return out

    def transform(self, X) -> np.ndarray:
        """The preprocessed images, float32 (n, C', H, W)."""
        if not self.fitted:
            raise ValueError("this preprocessor has steps with statistics: call fit first")
        return self._apply(_as_float(X), upto=len(self.steps), gather=None)

    def _apply(self, X, upto, gather):
        for i, step in enumerate(self.steps[:upto] if gather is None else self.steps[: upto + 1]):
            if i == gather:
                if step == "standardise":
                    rows = X.transpose(1, 0, 2, 3).reshape(X.shape[1], -1).T
                    self._moments[i].add(rows)
                else:
                    self._moments[i].add(X.reshape(len(X), -1))
                return X
            X = self._step(i, step, X)
        return X

    def _step(self, i, step, X):
        if step == "deskew":
            return deskew(X)
        if step == "grayscale":
            return grayscale(X)
        if step == "opponent":
            return opponent(X)
        p = self._params[i]
        if step == "standardise":
            if len(p["mean"]) != X.shape[1]:
                raise ValueError(f"standardise was fitted on {len(p['mean'])} channels; got "
                                 f"{X.shape[1]}")  # fmt: skip
            out = (X.astype(np.float64) - p["mean"][None, :, None, None]) * p["scale"][
                None, :, None, None
            ]
            return out.astype(np.float32)
        flat = X.reshape(len(X), -1).astype(np.float64)
        if flat.shape[1] != len(p["mean"]):
            raise ValueError(f"zca was fitted on {len(p['mean'])} features; got {flat.shape[1]}")
        return ((flat - p["mean"]) @ p["matrix"]).astype(np.float32).reshape(X.shape)

    def state(self) -> dict:
        """The fitted statistics as {name: array} (for saving)."""
        return {f"{i}_{key}": value for i, p in self._params.items() for key, value in p.items()}

    def set_state(self, arrays: dict) -> Preprocessor:
        self._params = {}
        for name, value in arrays.items():
            i, key = name.split("_", 1)
            self._params.setdefault(int(i), {})[key] = np.asarray(value, np.float64)
        if not self.fitted:
            raise ValueError("the saved preprocessing statistics are incomplete")
        return self


def parse_steps(preprocess) -> tuple[str, ...]:
    """None, a step name, "a+b" or a sequence of names, as a tuple of step names."""
    if preprocess is None:
        return ()
    if isinstance(preprocess, str):
        steps = tuple(preprocess.split("+"))
        if "" in steps:
            raise ValueError(f"preprocess {preprocess!r} has an empty step; write step names "
                             f"joined by '+' (e.g. 'opponent+zca'), or null for none")  # fmt: skip
    elif isinstance(preprocess, list | tuple):
        steps = tuple(preprocess)
    else:
        raise ValueError(f"preprocess must be None, a step name or a list of them; got "
                         f"{preprocess!r}")  # fmt: skip
    for step in steps:
        if not isinstance(step, str) or step not in STEPS:
            raise ValueError(f"unknown preprocessing step {step!r}; expected some of {STEPS}")
    return steps


def make_preprocessor(preprocess, zca_eps=1e-2) -> Preprocessor:
    """The preprocessing chain named by ``preprocess`` (None, "deskew", "opponent+zca", or a
    list of step names), unfitted."""
    return Preprocessor(parse_steps(preprocess), zca_eps=zca_eps)


def _as_float(X):
    X = np.asarray(X)
    if X.dtype == np.uint8:
        out = X.astype(np.float32)
        out *= np.float32(1 / 255)
        return out
    return np.ascontiguousarray(X, dtype=np.float32)


__all__ = ["STEPS", "Preprocessor", "deskew", "grayscale", "make_preprocessor", "opponent"]
