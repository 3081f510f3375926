"""Dataset declarations: the shipped file, a config's own, and the messages for bad ones."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml
from fixtures_data import make_fixture

from memnet import datasets
from memnet.datasets import catalogue
from memnet.pipeline.config import ConfigError, validate

# The published checksums (see the comments of config/datasets.yaml for where each is published).
PUBLISHED = {
    ("mnist", "train-images-idx3-ubyte.gz"): (
        9912422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    ("fashion-mnist", "t10k-labels-idx1-ubyte.gz"): (
        5148,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ),
    ("kmnist", "train-labels-idx1-ubyte.gz"): (
        29497,
        "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
    ),
    ("cifar10", "cifar-10-python.tar.gz"): (
        170498071,
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ),
    ("cifar100", "cifar-100-python.tar.gz"): (
        169001437,
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    ),
}


@pytest.fixture
def quick(repo) -> dict:
    return yaml.safe_load((repo / "config" / "quick.yaml").read_text())


def test_shipped_declarations(repo):
    known = datasets.declarations()
    assert set(known) >= {"mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100"}
    for (name, filename), (size, sha256) in PUBLISHED.items():
        assert known[name].files[filename] == datasets.RemoteFile(size, sha256), name
    assert known["fashion-mnist"].classes[0] == "T-shirt/top" and known["kmnist"].n_train == 60000
    cifar100, coarse = known["cifar100"], known["cifar100-coarse"]
    assert len(cifar100.classes) == 100 and cifar100.classes[26] == "crab"
    assert cifar100.label_key == "fine_labels" and cifar100.members["train"] == ("train",)
    # cifar100-coarse extends cifar100: the same archive, the other labels
    assert coarse.files == cifar100.files and coarse.label_key == "coarse_labels"
    assert len(coarse.classes) == 20 and coarse.classes[-1] == "vehicles_2"
    assert known["mnist"].image_shape == (1, 28, 28) and known["cifar10"].image_shape == (3, 32, 32)
    # every shipped declaration says in a comment where its checksums were published
    text = (repo / "config" / "datasets.yaml").read_text()
    for name in ("mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100"):
        block = text[text.index(f"\n{name}:\n") :]
        assert "sha256" in block[: block.index("files:")], name


def test_declaration_round_trips_through_json():
    for spec in datasets.declarations().values():
        again = datasets.spec_from_json(spec.name, json.dumps(spec.declaration()))
        assert again == spec


def test_config_adds_a_dataset(quick, tmp_path):
    quick["dataset_declarations"] = {"tiny": make_fixture("npz", tmp_path)}
    quick["datasets"] = ["mnist", "tiny"]
    quick["data"]["subset"]["tiny"] = {"n_train": 100}
    validate(quick)
    spec = datasets.get_spec("tiny", quick)
    assert spec.format == "npz" and spec.classes == ("a", "b", "c") and spec.n_train == 200
    assert datasets.get_spec("mnist", quick) == datasets.REGISTRY["mnist"]


def test_config_overrides_and_extends(quick):
    mirror_first = copy.deepcopy(datasets.REGISTRY["mnist"].declaration())
    mirror_first["urls"] = ["https://example.org/mnist/"]
    quick["dataset_declarations"] = {
        "mnist": mirror_first,
        "mnist-3": {"extends": "mnist", "classes": ["0", "1", "2"], "n_test": 5},
    }
    validate(quick)
    known = datasets.declarations(quick)
    assert known["mnist"].urls == ("https://example.org/mnist/",)
    assert known["mnist-3"].urls == ("https://example.org/mnist/",)  # from the redeclared mnist
    assert known["mnist-3"].classes == ("0", "1", "2") and known["mnist-3"].n_test == 5
    assert known["mnist-3"].files == known["mnist"].files
    assert datasets.REGISTRY["mnist"].urls[0].startswith("https://storage")  # shipped unchanged


def good_decl(tmp_path) -> dict:
    return make_fixture("idx", tmp_path / "raw")


@pytest.mark.parametrize(
    ("edit", "key", "why"),
    [
        (
            lambda d: d.update(format="png"),
            "format",
            "'png' is not one of ['idx', 'cifar-python', 'npz']",
        ),
        (lambda d: d.pop("image_shape"), "tiny", "'image_shape' is a required property"),
        (lambda d: d.update(image_shape=[2, 28, 28]), "image_shape[0]", "2 is not one of [1, 3]"),
        (lambda d: d.update(image_shape=[1, 28]), "image_shape", "is too short"),
        (
            lambda d: d["files"]["train_images"].update(sha256="abc"),
            "files.train_images.sha256",
            "expected 64 lowercase hexadecimal digits",
        ),
        (lambda d: d["files"].pop("test_labels"), "files", "'test_labels' is a required property"),
        (
            lambda d: d["files"].update(archive=d["files"].pop("train_images")),
            "files",
            "'archive' was unexpected",
        ),
        (lambda d: d.update(label_key="fine_labels"), "label_key", "not allowed here"),
        (
            lambda d: d.update(urls=["ftp://x/"]),
            "urls[0]",
            "expected an http://, https:// or file://",
        ),
        (lambda d: d.update(clases=["a"]), "tiny", "'clases' was unexpected"),
        (lambda d: d.update(extends="svhn"), "extends", "unknown dataset 'svhn'; known: cifar10"),
    ],
)
def test_bad_declaration_names_the_key(quick, tmp_path, edit, key, why):
    decl = good_decl(tmp_path)
    edit(decl)
    quick["dataset_declarations"] = {"tiny": decl}
    quick["datasets"] = ["tiny"]
    quick["data"]["subset"] = {}
    with pytest.raises(ConfigError) as err:
        validate(quick)
    full_key = "dataset_declarations.tiny" + ("" if key == "tiny" else f".{key}")
    assert f"config key '{full_key}'" in str(err.value)
    assert why in str(err.value)


def test_unknown_dataset_lists_the_known_ones(quick):
    for edit, key in [
        (lambda c: c.update(datasets=["mnist", "svhn"]), "datasets[1]"),
        (lambda c: c["data"]["subset"].update(svhn={"n_train": 5}), "data.subset.svhn"),
        (
            lambda c: c["baselines"]["knn"]["k1-l2"].update(only_datasets=["svhn"]),
            "baselines.knn.k1-l2.only_datasets[0]",
        ),
    ]:
        config = copy.deepcopy(quick)
        edit(config)
        with pytest.raises(ConfigError) as err:
            validate(config)
        message = str(err.value)
        assert (
            f"config key '{key}': unknown dataset 'svhn'; known: cifar10, cifar10-synthetic"
            in message
        )
        assert "fashion-mnist, kmnist, mnist" in message and "dataset_declarations" in message


def test_subset_larger_than_the_dataset(quick):
    quick["data"]["subset"]["mnist"]["n_test"] = 10001
    with pytest.raises(
        ConfigError, match=r"'data.subset.mnist.n_test': 10001 is more than the 10000"
    ):
        validate(quick)


def test_broken_shipped_file_is_named(tmp_path, monkeypatch):
    bad = tmp_path / "datasets.yaml"
    decl = datasets.REGISTRY["mnist"].declaration()
    decl["format"] = "jpeg"
    bad.write_text(yaml.safe_dump({"mnist": decl}))
    catalogue._shipped_raw.cache_clear()
    try:
        with pytest.raises(datasets.DeclarationError, match="datasets.yaml key 'mnist.format'"):
            catalogue._check(catalogue._resolve(catalogue._shipped_raw(bad), "datasets.yaml key"),
                            "datasets.yaml key")  # fmt: skip
    finally:
        catalogue._shipped_raw.cache_clear()


def test_cli_declaration_argument(tmp_path):
    from memnet.cli import main

    decl = make_fixture("npz", tmp_path / "raw")
    out = tmp_path / "tiny.npz"
    args = ["--dataset", "tiny", "--declaration", json.dumps(decl)]
    assert main(["prepare", *args, "--raw-dir", str(tmp_path / "raw"), "--out", str(out)]) == 0
    info = datasets.read_info(out)
    assert info.classes == ("a", "b", "c") and info.image_shape == (1, 10, 10)
    assert (info.n_train, info.n_test) == (200, 60)
    decl["image_shape"] = [5, 10, 10]
    bad = ["prepare", "--dataset", "tiny", "--declaration", json.dumps(decl)]
    assert main([*bad, "--raw-dir", str(tmp_path / "raw"), "--out", str(out)]) == 2


def test_cli_declaration_error_message(tmp_path, capsys):
    from memnet.cli import main

    decl = make_fixture("npz", tmp_path / "raw")
    decl["image_shape"] = [5, 10, 10]
    code = main(["prepare", "--dataset", "tiny", "--declaration", json.dumps(decl),
                 "--raw-dir", str(tmp_path / "raw"), "--out", str(tmp_path / "x.npz")])  # fmt: skip
    assert code == 2
    assert (
        "--declaration key 'tiny.image_shape[0]': 5 is not one of [1, 3]" in capsys.readouterr().err
    )


# ---- the three formats, from fixture files declared by a test ----------------------------------


@pytest.mark.parametrize("fmt", ["idx", "cifar-python", "npz"])
def test_each_format_prepares_and_loads(tmp_path, fmt):
    decl = make_fixture(fmt, tmp_path / "raw")
    spec = datasets.spec_from_json("tiny", json.dumps(decl))
    ds = datasets.load(datasets.prepare(spec, tmp_path / "raw", tmp_path / "tiny.npz"))
    c, h, w = decl["image_shape"]
    assert ds.X_train.shape == (200, c, h, w) and ds.X_test.shape == (60, c, h, w)
    assert ds.classes == decl["classes"]
    assert set(np.unique(ds.y_train)) == set(range(len(decl["classes"])))


def test_cifar_python_coarse_labels(tmp_path):
    decl = make_fixture("cifar-python", tmp_path / "raw")
    fine = datasets.spec_from_json("fine", json.dumps(decl))
    decl.update(label_key="coarse_labels", classes=["warm", "cool"])
    coarse = datasets.spec_from_json("coarse", json.dumps(decl))
    a = datasets.load(datasets.prepare(fine, tmp_path / "raw", tmp_path / "f.npz"))
    b = datasets.load(datasets.prepare(coarse, tmp_path / "raw", tmp_path / "c.npz"))
    np.testing.assert_array_equal(b.y_train, a.y_train // 2)  # the fixture's coarse = fine // 2
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_npz_layouts(tmp_path):
    """An npz may hold (n, C, H, W), (n, H, W, C), or (n, H, W) for greyscale."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 2, 3), dtype=np.uint8)  # (n, H, W)
    y = np.arange(6) % 2
    expected = None
    for name, layout in [("nhw", x), ("nhwc", x[..., None]), ("nchw", x[:, None])]:
        path = tmp_path / name / "d.npz"
        path.parent.mkdir()
        np.savez(path, x_train=layout, y_train=y, x_test=layout[:2], y_test=y[:2])
        decl = {
            "format": "npz",
            "files": {"arrays": {"name": "d.npz", **_entry(path)}},
            "classes": ["p", "q"],
            "image_shape": [1, 2, 3],
            "n_train": 6,
            "n_test": 2,
        }
        spec = datasets.spec_from_json("d", json.dumps(decl))
        got = datasets.load(datasets.prepare(spec, path.parent, tmp_path / f"{name}.npz"))
        expected = got.X_train if expected is None else expected
        np.testing.assert_array_equal(got.X_train, expected)
    np.testing.assert_allclose(expected[:, 0], x / 255, atol=1e-7)


def _entry(path) -> dict:
    import hashlib

    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# ---- the messages for a wrong checksum, image shape or format -----------------------------------


def test_wrong_checksum_message(tmp_path):
    decl = make_fixture("npz", tmp_path / "raw")
    decl["files"]["arrays"]["sha256"] = "0" * 64
    spec = datasets.spec_from_json("tiny", json.dumps(decl))
    with pytest.raises(ValueError) as err:
        datasets.prepare(spec, tmp_path / "raw", tmp_path / "tiny.npz")
    path = tmp_path / "raw" / "own.npz"
    assert str(err.value).startswith(f"{path}: sha256 ")
    assert f"expected {'0' * 64}" in str(err.value) and f"rm {path}" in str(err.value)


@pytest.mark.parametrize(
    ("fmt", "shape", "message"),
    [
        ("idx", [1, 28, 28], r"the images are 12x12 greyscale \(image_shape \[1, 12, 12\]\), but the declaration says image_shape \[1, 28, 28\]"),
        ("idx", [3, 12, 12], r"12x12 greyscale .* but the declaration says image_shape \[3, 12, 12\]"),
        ("cifar-python", [3, 32, 32], r"rows of 192 values do not fit the declared image_shape \[3, 32, 32\] \(3072 values per image\)"),
        ("npz", [3, 10, 10], r"x_train has shape \(200, 10, 10, 1\), which does not fit the declared image_shape \[3, 10, 10\]"),
    ],
)  # fmt: skip
def test_wrong_image_shape_message(tmp_path, fmt, shape, message):
    decl = make_fixture(fmt, tmp_path / "raw")
    decl["image_shape"] = shape
    spec = datasets.spec_from_json("tiny", json.dumps(decl))
    with pytest.raises(ValueError, match=message):
        datasets.prepare(spec, tmp_path / "raw", tmp_path / "tiny.npz")
    assert not (tmp_path / "tiny.npz").exists()


def test_wrong_format_message(tmp_path):
    decl = make_fixture("npz", tmp_path / "raw")
    decl["format"] = "numpy"
    with pytest.raises(datasets.DeclarationError) as err:
        datasets.spec_from_json("tiny", json.dumps(decl))
    assert str(err.value) == (
        "--declaration key 'tiny.format': 'numpy' is not one of ['idx', 'cifar-python', 'npz']"
    )
    # a real format that is not the files' format: the parser says what it found
    decl["format"] = "cifar-python"
    decl["files"] = {"archive": decl["files"]["arrays"]}
    spec = datasets.spec_from_json("tiny", json.dumps(decl))
    with pytest.raises(ValueError, match=r"own\.npz: cannot read the tiny archive"):
        datasets.prepare(spec, tmp_path / "raw", tmp_path / "tiny.npz")
