"""Static data sets: IDX, CIFAR python batches (restricted unpickling), PNG class folders,
ImageFolder, root resolution and its error message, transforms and describe().

Tiny files in each native format are written by ``data_fixtures``; the real MNIST,
Fashion-MNIST and CIFAR-10 files under ../shared/data are read when present.
"""

from __future__ import annotations

import gzip
import json
import pickle

import numpy as np
import pytest
import torch

import zoo.data as zd
from zoo.data.errors import FormatError, MissingDataError
from zoo.data.idx import read_idx
from zoo.data.safe_pickle import load_cifar_batch
from zoo.data.static import CIFAR100_CLASSES

from data_fixtures import (SHARED_DATA, cifar_batch_bytes, idx_bytes, write_cifar_python, write_idx,
                           write_image, write_mnist)

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(),
                                  reason=f"real data sets not present at {SHARED_DATA}")


@pytest.fixture(autouse=True)
def no_env_root(monkeypatch):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)


# --- IDX ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a.idx", images, gz)), images)
    back = read_idx(write_idx(tmp_path / "b.idx", ints, gz))
    assert back.dtype == np.int32 and back.dtype.isnative and back.tolist() == [1, -2, 70000]


def test_idx_errors_name_file_and_offset(tmp_path):
    good = idx_bytes(np.zeros((2, 3, 3), np.uint8))  # 16-byte header + 18 bytes
    cases = {
        "magic": (b"\x01\x02" + good[2:], "at byte offset 0: not an IDX file"),
        "short-header": (good[:10], "at byte offset 10: IDX header truncated"),
        "truncated": (good[:-5], "at byte offset 29: IDX data truncated"),
        "trailing": (good + b"xx", "at byte offset 34: 2 unexpected bytes"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(FormatError, match=message) as err:
            read_idx(path)
        assert str(path) in str(err.value)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(good)[:-12])
    with pytest.raises(FormatError, match="broken.gz: corrupt or truncated gzip"):
        read_idx(broken)


def test_mnist_checks_shapes_and_counts(tmp_path):
    write_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))  # 3 images, 2 labels
    with pytest.raises(FormatError, match="t10k-labels-idx1-ubyte: expected 3 uint8 labels"):
        zd.load_arrays("mnist", tmp_path, "test")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 27, 27), np.uint8))
    with pytest.raises(FormatError, match="t10k-images-idx3-ubyte: expected uint8 images N x 28 x 28"):
        zd.load_arrays("mnist", tmp_path, "test")


# --- roots -------------------------------------------------------------------------------------
def test_roots_native_torchvision_and_parent(tmp_path, monkeypatch):
    native = write_mnist(tmp_path / "native")
    images, labels = zd.load_arrays("mnist", tmp_path / "native", "train")
    assert images.dtype == torch.uint8 and images.shape == (5, 1, 28, 28) and labels.dtype == torch.int64
    assert np.array_equal(images[:, 0].numpy(), native["train"][0])
    assert labels.tolist() == native["train"][1].tolist()

    tv = write_mnist(tmp_path / "tv" / "FashionMNIST" / "raw", gz=False, seed=1)
    images, labels = zd.load_arrays("fashion_mnist", tmp_path / "tv", "test")
    assert np.array_equal(images[:, 0].numpy(), tv["test"][0])

    parent = write_mnist(tmp_path / "parent" / "fashion-mnist", seed=2)
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "parent"))
    ds = zd.create_dataset("fashion-mnist", split="test")
    assert len(ds) == 3 and ds.classes[0] == "T-shirt/top"
    assert ds[1][1] == int(parent["test"][1][1])


def test_missing_files_message_names_every_location(tmp_path, monkeypatch):
    with pytest.raises(MissingDataError) as err:
        zd.create_dataset("mnist", tmp_path, "test")
    message = str(err.value)
    for folder in ("", "/MNIST/raw", "/mnist", "/mnist/MNIST/raw"):
        assert f"{tmp_path}{folder}  (" in message
    assert "t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz" in message
    assert "t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz" in message
    assert "download=True" in message and "from the root argument" in message
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((1, 28, 28), np.uint8), gz=True)
    with pytest.raises(MissingDataError, match=r"mnist  \(missing t10k-labels-idx1-ubyte or "):
        zd.create_dataset("mnist", tmp_path, "test")
    with pytest.raises(MissingDataError, match="ZOO_DATA_DIR"):
        zd.create_dataset("mnist", None, "test")
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(MissingDataError, match=r"(?s)from the \$ZOO_DATA_DIR.*folder does not exist"):
        zd.create_dataset("cifar100")


def test_download_uses_torchvision_only_when_asked(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    calls = []

    class FakeMNIST:  # stands in for the network: writes what torchvision's downloader would
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            write_mnist(tmp_path / "MNIST" / "raw", gz=False)

    monkeypatch.setattr(tvd, "MNIST", FakeMNIST)
    with pytest.raises(MissingDataError):
        zd.create_dataset("mnist", tmp_path)
    assert calls == []
    ds = zd.create_dataset("mnist", tmp_path, download=True)
    assert len(ds) == 5 and calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    with pytest.raises(ValueError, match="download=True is not supported"):
        zd.create_dataset("imagenet", tmp_path, download=True)


# --- CIFAR python batches ----------------------------------------------------------------------
def test_cifar10_python_batches(tmp_path):
    written = write_cifar_python(tmp_path / "cifar-10-batches-py", "cifar10", {"train": 2, "test": 3})
    raw = (tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()
    reference = pickle.loads(raw, encoding="latin1")  # the fixture is a valid Python 2 pickle
    ours = load_cifar_batch(tmp_path / "cifar-10-batches-py" / "test_batch")
    assert np.array_equal(ours["data"], reference["data"]) and ours["labels"] == reference["labels"]

    for split, n in (("train", 10), ("test", 3)):
        images, labels = zd.load_arrays("cifar10", tmp_path, split)  # torchvision layout
        assert images.shape == (n, 3, 32, 32) and images.dtype == torch.uint8
        assert np.array_equal(images.numpy(), written[split][0])
        assert labels.tolist() == written[split][1].tolist()
    ds = zd.create_dataset("cifar10", tmp_path / "cifar-10-batches-py", "test")
    image, label = ds[2]
    expected = (written["test"][0][2] / 255.0 - np.array(ds.mean)[:, None, None]) / np.array(ds.std)[:, None, None]
    assert label == written["test"][1][2] and torch.allclose(image, torch.tensor(expected, dtype=torch.float32), atol=1e-6)
    assert ds.describe()["format"] == "cifar-python"


def test_cifar100_python(tmp_path):
    written = write_cifar_python(tmp_path / "cifar100" / "cifar-100-python", "cifar100", {"test": 4})
    ds = zd.create_dataset("cifar100", tmp_path, "test", normalize=False)
    assert ds.num_classes == 100 and len(ds) == 4
    assert [ds[i][1] for i in range(4)] == written["test"][1].tolist()
    assert torch.allclose(ds[0][0], torch.from_numpy(written["test"][0][0]).float() / 255)
    assert len(CIFAR100_CLASSES) == 100 and list(CIFAR100_CLASSES) == sorted(CIFAR100_CLASSES)


def test_restricted_unpickler_refuses_code_and_objects(tmp_path):
    evil = tmp_path / "evil"
    evil.write_bytes(b"\x80\x02cos\nsystem\nU\x04trueq\x85R.")
    with pytest.raises(FormatError, match="evil.*refusing to load global os.system"):
        load_cifar_batch(evil)
    objects = tmp_path / "objects"
    objects.write_bytes(b"\x80\x02cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R.")
    with pytest.raises(FormatError, match="holds Python objects"):
        load_cifar_batch(objects)
    skeleton = tmp_path / "object array skeleton"  # ndarray._reconstruct(ndarray, (0,), 'O')
    skeleton.write_bytes(b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01O\x87R.")
    with pytest.raises(FormatError, match="holds Python objects"):
        load_cifar_batch(skeleton)
    good = cifar_batch_bytes(np.zeros((2, 3072), np.uint8), [1, 2], ["a", "b"])
    cut = tmp_path / "cut"
    cut.write_bytes(good[:100])
    with pytest.raises(FormatError, match=r"cut at byte offset \d+: (pickle stream truncated|not a valid)"):
        load_cifar_batch(cut)
    wrong = tmp_path / "cifar-10-batches-py"
    write_cifar_python(wrong, "cifar10", {"test": 2})
    (wrong / "test_batch").write_bytes(cifar_batch_bytes(np.zeros((2, 100), np.uint8), [1, 2], ["a", "b"]))
    with pytest.raises(FormatError, match="test_batch: 'data' must be a uint8 array N x 3072"):
        zd.load_arrays("cifar10", wrong, "test")


# --- PNG class folders and ImageFolder ---------------------------------------------------------
def test_cifar10_png_folders(tmp_path):
    rng = np.random.default_rng(0)
    pixels = {}
    for label, cls in enumerate(zd.static.CIFAR10_CLASSES):
        for name in ("b.png", "a.png"):
            pixels[(label, name)] = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            write_image(tmp_path / "cifar10" / "test" / cls / name, pixels[(label, name)])
    images, labels = zd.load_arrays("cifar10", tmp_path, "test")
    assert images.shape == (20, 3, 32, 32) and labels.tolist() == [i // 2 for i in range(20)]
    assert np.array_equal(images[1].numpy(), pixels[(0, "b.png")].transpose(2, 0, 1))  # sorted by name
    ds = zd.create_dataset("cifar10", tmp_path / "cifar10", "test", normalize=False)
    assert ds.describe()["format"] == "png-folders" and len(ds) == 20
    assert torch.allclose(ds[0][0], torch.from_numpy(pixels[(0, "a.png")].transpose(2, 0, 1)).float() / 255)
    write_image(tmp_path / "cifar10" / "test" / "cat" / "c.png", np.zeros((30, 32, 3), np.uint8))
    with pytest.raises(FormatError, match="c.png: expected a 32x32 image, found 30x32"):
        zd.load_arrays("cifar10", tmp_path, "test")


def test_imagenet_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for wnid, size in (("n01443537", (300, 400)), ("n01440764", (500, 333))):
        write_image(tmp_path / "imagenet" / "val" / wnid / "ILSVRC2012_val_1.JPEG",
                    rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    write_image(tmp_path / "imagenet" / "val" / "n01440764" / "gray.JPEG", np.zeros((256, 256), np.uint8))
    ds = zd.create_dataset("imagenet", tmp_path, "test")
    assert ds.classes == ("n01440764", "n01443537") and [label for _, label in ds.files] == [0, 0, 1]
    image, label = ds[2]
    assert image.shape == (3, 224, 224) and label == 1
    assert ds[1][0].shape == (3, 224, 224)  # grayscale JPEG converted to RGB
    train = zd.create_dataset("imagenet", tmp_path / "imagenet", "test", augment=True)
    assert train[0][0].shape == (3, 224, 224)
    with pytest.raises(ValueError, match="load_arrays supports"):
        zd.load_arrays("imagenet", tmp_path, "test")


# --- transforms, describe, registry ------------------------------------------------------------
def test_describe_transforms_and_registry(tmp_path):
    write_cifar_python(tmp_path / "cifar-10-batches-py", "cifar10", {"train": 1})
    ds = zd.create_dataset("cifar10", tmp_path, "train", augment=True)
    info = json.loads(json.dumps(ds.describe()))
    assert info["input_size"] == [3, 32, 32] and info["num_classes"] == 10 and info["augment"] is True
    assert info["transform"][0].startswith("RandomCrop(size=(32, 32), padding=[4, 4, 4, 4]")
    assert info["std"] == [0.2023, 0.1994, 0.201]
    torch.manual_seed(0)
    views = torch.stack([ds[0][0] for _ in range(8)])
    assert views.shape == (8, 3, 32, 32) and not torch.allclose(views[0], views[1:].mean(0))
    write_mnist(tmp_path / "mnist")
    with pytest.raises(ValueError, match="mnist: no train-time augmentation"):
        zd.create_dataset("mnist", tmp_path, augment=True)
    assert zd.create_dataset("mnist", tmp_path, transform=lambda x: x)[0][0].dtype == torch.uint8
    assert zd.list_datasets() == sorted(zd.list_datasets()) and "cifar10_dvs" in zd.list_datasets()
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        zd.create_dataset("svhn", tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        zd.create_dataset("mnist", tmp_path, "val")


# --- the real files in ../shared/data ----------------------------------------------------------
@needs_shared
def test_real_mnist_and_fashion_match_foolbox_samples():
    samples = SHARED_DATA / "foolbox-samples"
    for name, prefix in (("mnist", "mnist"), ("fashion_mnist", "fashionMNIST")):
        images, labels = zd.load_arrays(name, SHARED_DATA, "test")
        assert images.shape == (10000, 1, 28, 28)
        for i in range(20):
            (path,) = samples.glob(f"{prefix}_{i:02d}_*.png")
            assert int(path.stem.split("_")[-1]) == labels[i]
            assert np.array_equal(zd.static._decode(path, "L")[0], images[i, 0].numpy())
    images, labels = zd.load_arrays("mnist", SHARED_DATA / "mnist", "train")
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@needs_shared
def test_real_cifar10_png_folders():
    ds = zd.create_dataset("cifar10", SHARED_DATA, "test", normalize=False)
    assert len(ds) == 10000 and np.bincount([label for _, label in ds.files]).tolist() == [1000] * 10
    index = [p.name for p, _ in ds.files].index("domestic_cat_s_000907.png")  # test_batch image 0
    image, label = ds[index]
    assert label == 3 and ds.describe()["format"] == "png-folders"
    reference = zd.static._decode(SHARED_DATA / "foolbox-samples" / "cifar10_00_3.png", "RGB")
    assert torch.equal((image * 255).round().to(torch.uint8), torch.from_numpy(reference))
