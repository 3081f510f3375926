"""Preprocessing (memnet.preprocess): deskewing, colour transforms, standardising and ZCA
whitening, on fixtures with known exact results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memnet.datasets import to_unit_float
from memnet.models.preprocess import (
    Preprocessor,
    deskew,
    grayscale,
    make_preprocessor,
    opponent,
    parse_steps,
)


def deskew_reference(img):
    """The module docstring's deskewing of one image (C, H, W), in plain Python float64: sums
    in pixel order, taps in row-major order, zero outside the image."""
    n_ch, h, w = img.shape
    v = img.astype(np.float64)
    total = sr = sc = 0.0
    for ch in range(n_ch):
        for i in range(h):
            for j in range(w):
                total += v[ch, i, j]
                sr += i * v[ch, i, j]
                sc += j * v[ch, i, j]
    if not total > 0.0:
        return img.copy()
    r0, c0 = sr / total, sc / total
    var_r = cov = 0.0
    for ch in range(n_ch):
        for i in range(h):
            for j in range(w):
                var_r += (i - r0) * (i - r0) * v[ch, i, j]
                cov += (i - r0) * (j - c0) * v[ch, i, j]
    alpha = cov / var_r if var_r > 0.0 else 0.0
    out = np.zeros_like(img)
    ci, cj = (h - 1) / 2.0, (w - 1) / 2.0
    for i in range(h):
        src_i = i - ci + r0
        i0 = math.floor(src_i)
        fi = src_i - i0
        for j in range(w):
            src_j = j - cj + c0 + alpha * (i - ci)
            j0 = math.floor(src_j)
            fj = src_j - j0
            for ch in range(n_ch):
                acc = 0.0
                for ii, wi in ((i0, 1.0 - fi), (i0 + 1, fi)):
                    for jj, wj in ((j0, 1.0 - fj), (j0 + 1, fj)):
                        if 0 <= ii < h and 0 <= jj < w:
                            acc += wi * wj * v[ch, ii, jj]
                out[ch, i, j] = acc
    return out


def test_deskew_equals_a_plain_python_reference_bit_for_bit():
    """Blobs that reach the border (taps outside the image) and ones well inside (every tap
    inside: the kernel's fast path), one and three channels."""
    rng = np.random.default_rng(0)
    for n_ch, size in [(1, 12), (3, 9)]:
        imgs = rng.random((6, n_ch, size, size)).astype(np.float32)
        imgs[imgs < 0.2] = 0.0
        imgs[3:, :, :2] = 0.0  # some mass away from the top rows
        imgs[5] = 0.0  # a blank image
        got = deskew(imgs)
        for k in range(len(imgs)):
            np.testing.assert_array_equal(got[k], deskew_reference(imgs[k]))


def test_deskew_leaves_an_upright_centred_symmetric_image_unchanged():
    img = np.zeros((1, 1, 9, 9), np.float32)
    img[0, 0, 2:7, 3:6] = 0.5  # a centred upright bar
    img[0, 0, 4, 4] = 1.0
    np.testing.assert_array_equal(deskew(img), img)


def test_deskew_makes_a_sheared_line_vertical_through_the_centre():
    img = np.zeros((1, 1, 15, 15), np.float32)
    for r in range(2, 13):
        img[0, 0, r, r] = 1.0  # the diagonal: skew 1, centroid (7, 7) = the centre
    out = deskew(img)[0, 0]
    expected = np.zeros((15, 15), np.float32)
    expected[2:13, 7] = 1.0
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_deskew_moves_the_centroid_to_the_centre_and_keeps_blank_images():
    img = np.zeros((2, 2, 11, 11), np.float32)
    img[0, :, 1:4, 1:3] = 1.0  # an upright block in the top-left corner, both channels
    out = deskew(img)
    rows, cols = np.mgrid[:11, :11]
    mass = out[0, 0].sum()
    assert mass == pytest.approx(img[0, 0].sum(), rel=1e-6)
    assert (out[0, 0] * rows).sum() / mass == pytest.approx(5.0, abs=1e-6)
    assert (out[0, 0] * cols).sum() / mass == pytest.approx(5.0, abs=1e-6)
    np.testing.assert_array_equal(out[0, 0], out[0, 1])
    np.testing.assert_array_equal(out[1], img[1])


def test_grayscale_and_opponent_weights():
    rgb = np.zeros((3, 3, 1, 1), np.float32)
    for c in range(3):
        rgb[c, c] = 1.0  # pure red, green, blue
    np.testing.assert_allclose(grayscale(rgb)[:, 0, 0, 0], [0.299, 0.587, 0.114], rtol=1e-6)
    opp = opponent(rgb)[:, :, 0, 0]  # column c: the opponent coordinates of primary c
    s2, s6, s3 = np.sqrt(2), np.sqrt(6), np.sqrt(3)
    expected = np.array([[1 / s2, -1 / s2, 0], [1 / s6, 1 / s6, -2 / s6], [1 / s3, 1 / s3, 1 / s3]])
    np.testing.assert_allclose(opp.T, expected, rtol=1e-6)
    x = np.random.default_rng(0).random((5, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose((opponent(x) ** 2).sum(1), (x**2).sum(1), rtol=1e-5)  # rotation
    with pytest.raises(ValueError, match="3 channels"):
        grayscale(x[:, :2])


def test_standardise_gives_each_channel_zero_mean_unit_variance():
    rng = np.random.default_rng(1)
    x = (rng.random((300, 3, 5, 5)) * [[[2.0]], [[0.5]], [[7.0]]]).astype(np.float32)
    x[:, 2] += 3
    pre = make_preprocessor("standardise").fit(x, chunk=64)
    out = pre.transform(x).astype(np.float64)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, rtol=1e-5)


def test_zca_whitened_data_has_identity_covariance_and_streaming_equals_one_pass():
    rng = np.random.default_rng(2)
    mixing = rng.normal(size=(12, 12))
    x = (rng.normal(size=(2000, 12)) @ mixing + 3.0).reshape(2000, 3, 2, 2).astype(np.float32)
    streamed = Preprocessor(["zca"], zca_eps=0.0).fit(x, chunk=137)
    whole = Preprocessor(["zca"], zca_eps=0.0).fit(x, chunk=10**6)
    out = streamed.transform(x).reshape(2000, -1).astype(np.float64)
    np.testing.assert_allclose(np.cov(out, rowvar=False, bias=True), np.eye(12), atol=1e-4)
    for key, value in whole.state().items():
        np.testing.assert_allclose(streamed.state()[key], value, rtol=1e-9, atol=1e-12)
    # ZCA is the symmetric whitening: the whitening matrix is symmetric
    w = streamed.state()["0_matrix"]
    np.testing.assert_allclose(w, w.T, atol=1e-12)


def test_chains_state_round_trip_and_errors():
    rng = np.random.default_rng(3)
    x = rng.random((50, 3, 4, 4)).astype(np.float32)
    pre = make_preprocessor("opponent+standardise").fit(x)
    assert pre.steps == ("opponent", "standardise")
    back = make_preprocessor(["opponent", "standardise"]).set_state(pre.state())
    np.testing.assert_array_equal(back.transform(x), pre.transform(x))
    np.testing.assert_array_equal(make_preprocessor(None).transform(x), x)
    u8 = (x * 255).astype(np.uint8)
    np.testing.assert_array_equal(make_preprocessor(None).transform(u8), to_unit_float(u8))
    with pytest.raises(ValueError, match="call fit first"):
        make_preprocessor("zca").transform(x)
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        make_preprocessor("sharpen")


def test_transform_in_chunks_is_transform_piece_by_piece():
    rng = np.random.default_rng(4)
    X = rng.random((70, 3, 6, 6), dtype=np.float32)
    for steps in ("deskew", "opponent+standardise", "zca"):
        pre = make_preprocessor(steps)
        if pre.stateful:
            pre.fit(X)
        chunked = pre.transform_in_chunks(X, chunk=16)
        expected = np.concatenate([pre.transform(X[s : s + 16]) for s in range(0, 70, 16)])
        assert chunked.dtype == np.float32 and chunked.shape == expected.shape
        np.testing.assert_array_equal(chunked, expected)
        np.testing.assert_allclose(chunked, pre.transform(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: deskew(np.zeros((2, 28, 28), np.float32)), "deskew needs images of shape (n, C, H, W)"),
        (lambda: Preprocessor(("zca",)).fit(np.zeros((0, 1, 4, 4), np.float32)),
         "Preprocessor.fit needs at least one image"),
        (lambda: Preprocessor(("zca",), zca_eps=-1), "zca_eps must be a number >= 0"),
        (lambda: parse_steps("+"), "preprocess '+' has an empty step"),
        (lambda: parse_steps("deskew++zca"), "has an empty step"),
        (lambda: Preprocessor(("opponent",)).output_shape((1, 28, 28)),
         "'opponent' needs colour images with 3 channels (RGB); these images have 1"),
    ],
)  # fmt: skip
def test_wrong_ranks_and_forms_get_one_message_naming_the_parameter(call, words):
    with pytest.raises(ValueError) as err:
        call()
    assert words in str(err.value)


def test_output_shape_follows_the_steps():
    assert Preprocessor(("grayscale", "zca")).output_shape((3, 32, 32)) == (1, 32, 32)
    assert Preprocessor(("opponent", "standardise")).output_shape((3, 8, 9)) == (3, 8, 9)
    assert Preprocessor(("deskew",)).output_shape((1, 28, 28)) == (1, 28, 28)
