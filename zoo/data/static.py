"""Static image data sets: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 and ImageNet.

Native formats read (nothing is converted beforehand, nothing is downloaded unless asked):

- MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017): the four IDX files
  ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, raw or ``.gz`` (:mod:`zoo.data.idx`).
- CIFAR-10/100 (Krizhevsky 2009): the "python version" batches, read with a restricted
  unpickler (:mod:`zoo.data.safe_pickle`); CIFAR-10 also as PNG class folders
  ``{train,test}/<class>/*.png`` (the layout of ``shared/data/cifar10``).
- ImageNet (ILSVRC-2012): ``train/`` and ``val/`` as class folders (torchvision ImageFolder
  layout, one folder per WordNet id). Split "test" reads ``val/``, the labelled held-out set.

Samples are ``(image, label)``: ``image`` a float32 tensor [C, H, W], ``label`` an int.
Default transform: scale uint8 to [0, 1] then normalise with the data set's mean/std:

=============  ==========================  ==========================  ===========================
data set       mean                        std                         where the numbers come from
=============  ==========================  ==========================  ===========================
mnist          0.1307                      0.3081                      train pixels (measured)
fashion_mnist  0.2860                      0.3530                      train pixels (measured)
cifar10        0.4914, 0.4822, 0.4465      0.2023, 0.1994, 0.2010      MLF authors' code (common)
cifar100       0.5071, 0.4865, 0.4409      0.2673, 0.2564, 0.2762      train pixels (common)
imagenet       0.485, 0.456, 0.406         0.229, 0.224, 0.225         torchvision
=============  ==========================  ==========================  ===========================

The CIFAR-10 std used by the MLF code (and most CIFAR repositories) is not the pixel std of the
training set (0.2470, 0.2435, 0.2616); it is kept because the zoo reproduces those recipes.
``augment=True`` adds train-time augmentation: CIFAR random crop 32 with zero padding 4 and a
horizontal flip; ImageNet random-resized crop 224 and flip (evaluation: resize 256, centre
crop 224). MNIST-like sets define none.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import FormatError, MissingDataError
from .files import list_files
from .idx import read_idx, read_idx_header
from .roots import Layout, data_root, first_existing, locate
from .safe_pickle import load_cifar_batch

if TYPE_CHECKING:
    from torchvision.transforms import v2

SPLITS = ("train", "test")

MNIST_CLASSES = tuple("0123456789")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
IMAGE_FORMATS = ("PNG", "JPEG")  # the only decoders PIL may use (ImageNet has PNGs named .JPEG)
# What PIL raises for a broken file: OSError (truncated, unidentified), SyntaxError (broken PNG
# chunks), ValueError/TypeError/struct.error/IndexError (bad header fields), EOFError,
# DecompressionBombError (an Exception), zlib errors.
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, IndexError, EOFError, struct.error,
                zlib.error, Image.DecompressionBombError)


@dataclass(frozen=True)
class ImageSpec:
    """What a static data set is: classes, channels, native size and normalisation."""

    name: str
    classes: tuple[str, ...]
    in_chans: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    folders: tuple[str, ...]  # conventional subfolder names under a parent root


SPECS = {
    "mnist": ImageSpec("mnist", MNIST_CLASSES, 1, (28, 28), (0.1307,), (0.3081,), ("mnist",)),
    "fashion_mnist": ImageSpec("fashion_mnist", FASHION_CLASSES, 1, (28, 28), (0.2860,), (0.3530,),
                               ("fashion-mnist", "fashion_mnist")),
    "cifar10": ImageSpec("cifar10", CIFAR10_CLASSES, 3, (32, 32), (0.4914, 0.4822, 0.4465),
                         (0.2023, 0.1994, 0.2010), ("cifar10",)),
    "cifar100": ImageSpec("cifar100", CIFAR100_CLASSES, 3, (32, 32), (0.5071, 0.4865, 0.4409),
                          (0.2673, 0.2564, 0.2762), ("cifar100",)),
    "imagenet": ImageSpec("imagenet", (), 3, (224, 224), (0.485, 0.456, 0.406),
                          (0.229, 0.224, 0.225), ("imagenet", "ILSVRC2012")),
}
TORCHVISION_FOLDERS = {"mnist": "MNIST/raw", "fashion_mnist": "FashionMNIST/raw",
                       "cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _native_folders(name: str) -> list[str]:
    """Subfolders to search: the root itself, torchvision's layout, the conventional parent
    names, and torchvision's layout under those."""
    tv = TORCHVISION_FOLDERS.get(name)
    folders = ["", *([tv] if tv else [])]
    for parent in SPECS[name].folders:
        folders += [parent, *([f"{parent}/{tv}"] if tv else [])]
    return folders


def _layouts(name: str, split: str) -> list[Layout]:
    if name in ("mnist", "fashion_mnist"):
        prefix = "train" if split == "train" else "t10k"
        files = tuple((stem, stem + ".gz") for stem in
                      (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"))
        return [Layout(folder, files, "idx") for folder in _native_folders(name)]
    if name == "cifar10":
        files = tuple(f"data_batch_{i}" for i in range(1, 6)) if split == "train" else ("test_batch",)
        batches = [Layout(folder, files, "cifar-python") for folder in _native_folders(name)]
        pngs = [Layout(f"{parent}/{split}".lstrip("/"), CIFAR10_CLASSES, "png-folders")
                for parent in ("", "cifar10")]
        return batches + pngs
    if name == "cifar100":
        return [Layout(folder, (split,), "cifar-python") for folder in _native_folders(name)]
    if name == "imagenet":
        return [Layout(parent, (_imagenet_folder(split),), "image-folder")
                for parent in ("", *SPECS[name].folders)]
    raise ValueError(f"unknown static data set {name!r}; expected one of {', '.join(SPECS)}")


def _imagenet_folder(split: str) -> str:
    return "train" if split == "train" else "val"


def _download(name: str, root) -> None:
    """Fetch the official files with torchvision's downloaders (only when download=True).

    MNIST/Fashion-MNIST: torchvision's MNIST classes download and check the IDX files into
    ``root/MNIST/raw``; CIFAR: the official tarball, MD5-checked and extracted, without
    torchvision's own loader (which would unpickle it)."""
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import download_and_extract_archive

    base = data_root(root)
    if base is None:
        raise MissingDataError(f"{name}: download=True needs root=... or $ZOO_DATA_DIR")
    if name in ("mnist", "fashion_mnist"):
        cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
        for train in (True, False):
            cls(str(base), train=train, download=True)
    elif name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        download_and_extract_archive(cls.url, str(base), filename=cls.filename, md5=cls.tgz_md5)
    else:
        raise ValueError(f"{name}: download=True is not supported; fetch the data set by hand")


def _find(name: str, root, split: str, download: bool) -> tuple[Path, Layout]:
    hint = ("Nothing is downloaded unless you pass download=True."
            if name in TORCHVISION_FOLDERS else "")
    try:
        return locate(name, root, _layouts(name, split), hint)
    except MissingDataError:
        if not download:
            raise
    _download(name, root)
    return locate(name, root, _layouts(name, split), hint)


def _read_mnist(name: str, folder: Path, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels IDX files; their headers are checked (uint8, N x 28 x 28 images and
    N labels) before any data is read, then every label must name a class."""
    image_file, label_file = (first_existing(folder, req) for req in layout.required)
    images_h, labels_h = read_idx_header(image_file), read_idx_header(label_file)
    size = SPECS[name].size
    if images_h.dtype != np.uint8 or len(images_h.dims) != 3 or images_h.dims[1:] != size:
        raise FormatError(image_file, f"expected uint8 images N x {size[0]} x {size[1]}, found "
                                      f"{images_h.type_name} {images_h.shape_text}")
    count = images_h.dims[0]
    if not count:
        raise FormatError(image_file, "the header declares 0 images (a data set of 0 samples)", 4)
    if labels_h.dtype != np.uint8 or labels_h.dims != (count,):
        raise FormatError(label_file, f"expected {count} uint8 labels (one per image in "
                                      f"{image_file.name}), found {labels_h.type_name} {labels_h.shape_text}")
    images, labels = read_idx(image_file), read_idx(label_file)
    check_labels(label_file, "label", labels, len(SPECS[name].classes))
    return images[:, None], labels.astype(np.int64)


def check_labels(path: Path, field: str, labels: np.ndarray, num_classes: int) -> None:
    """Refuse a label outside ``0 .. num_classes - 1``, naming its index."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise FormatError(path, f"{field} {i} is {labels[i]}, outside 0..{num_classes - 1}")


def _read_cifar_batches(name: str, folder: Path, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    key = "labels" if name == "cifar10" else "fine_labels"
    images, labels = [], []
    for file in layout.required:
        path = folder / file
        batch = {k.decode("latin1") if isinstance(k, bytes) else k: v
                 for k, v in load_cifar_batch(path).items()}
        data = _cifar_images(path, batch.get("data"))
        labels.append(_cifar_labels(path, key, batch.get(key), len(data), len(SPECS[name].classes)))
        images.append(data.reshape(-1, 3, 32, 32))
    return np.concatenate(images), np.concatenate(labels)


def _cifar_images(path: Path, data) -> np.ndarray:
    """A batch's 'data' field: a uint8 array N x 3072 (3 x 32 x 32, channel-major), N > 0."""
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072 or not len(data):
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise FormatError(path, f"'data' must be a uint8 array N x 3072 with N > 0, found {found}")
    return data


def _cifar_labels(path: Path, key: str, values, count: int, num_classes: int) -> np.ndarray:
    """A batch's label field: a list (or integer array) of ``count`` ints in 0..num_classes-1.

    Floats, bools, strings and nested lists are refused rather than converted."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu":
        labels = values.astype(np.int64)
    elif isinstance(values, list) and all(type(v) is int for v in values):
        if any(not -2**63 <= v < 2**63 for v in values):
            raise FormatError(path, f"'{key}' holds an integer outside the int64 range")
        labels = np.array(values, dtype=np.int64)
    else:
        raise FormatError(path, f"'{key}' must be a list of int labels, found "
                                f"{type(values).__name__ if values is not None else 'no such field'}")
    if len(labels) != count:
        raise FormatError(path, f"'{key}' must list one label per image ({count}), found {len(labels)}")
    check_labels(path, f"'{key}' entry", labels, num_classes)
    return labels


def _class_files(folder: Path, classes: tuple[str, ...]) -> list[tuple[Path, int]]:
    """``(image file, label)`` for each image in ``folder/<class>/``, sorted by name per class.

    Like torchvision's ImageFolder, a class folder without images is refused (the class would
    otherwise be silently absent); so is a class entry that is not a folder, or an entry with an
    image suffix that is not a file."""
    files = []
    for label, cls in enumerate(classes):
        class_folder = folder / cls
        if not class_folder.is_dir():
            raise FormatError(class_folder, f"expected the folder of class {cls!r}, found a file")
        found = list_files(class_folder, IMAGE_SUFFIXES)
        if not found:
            raise MissingDataError(f"{class_folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) "
                                   f"for class {cls!r}")
        files += [(p, label) for p in found]
    return files


def _decode(path: Path, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file into uint8 [C, H, W].

    Only the PNG and JPEG decoders are used (the folders hold nothing else; PIL would otherwise
    try every format it knows). The size in the header is checked before any pixel is decoded:
    it must be ``size`` (H, W) when one is given, and at most PIL's ``Image.MAX_IMAGE_PIXELS``
    otherwise, so a decompression bomb is refused without being decompressed. Any decoder
    failure is a :class:`FormatError` naming the file."""
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: the size is checked here instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as img:
                _check_image_size(path, img.size, size)
                array = np.array(img.convert(mode))
    except FormatError:
        raise
    except IMAGE_ERRORS as err:
        raise FormatError(path, f"cannot decode image ({type(err).__name__}: {err})") from None
    return array.reshape(*array.shape[:2], -1).transpose(2, 0, 1)


def _check_image_size(path: Path, width_height: tuple[int, int], size: tuple[int, int] | None) -> None:
    width, height = width_height
    if size is not None and (height, width) != size:
        raise FormatError(path, f"expected a {size[0]}x{size[1]} image, found {height}x{width}")
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise FormatError(path, f"the header declares {width}x{height} = {width * height} pixels, "
                                f"more than the {limit} allowed (PIL.Image.MAX_IMAGE_PIXELS)")


def load_arrays(name: str, root: str | os.PathLike | None = None, split: str = "train",
                download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a whole small data set at once: ``(images uint8 [N, C, H, W], labels int64 [N])``.

    For MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 (ImageNet is too large to hold in memory).
    The training engine keeps these on the device and augments there.
    """
    name = name.replace("-", "_").lower()
    if name not in SPECS or name == "imagenet":
        raise ValueError(f"load_arrays supports mnist, fashion_mnist, cifar10, cifar100; got {name!r}")
    folder, layout = _find(name, root, check_split(split), download)
    return _read_arrays(name, folder, layout)


def _read_arrays(name: str, folder: Path, layout: Layout) -> tuple[torch.Tensor, torch.Tensor]:
    if layout.kind == "idx":
        images, labels = _read_mnist(name, folder, layout)
    elif layout.kind == "cifar-python":
        images, labels = _read_cifar_batches(name, folder, layout)
    else:
        files = _class_files(folder, SPECS[name].classes)
        images = np.stack([_decode(p, "RGB", SPECS[name].size) for p, _ in files])
        labels = np.array([label for _, label in files], dtype=np.int64)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


def build_transform(spec: ImageSpec, augment: bool, normalize: bool) -> v2.Compose:
    """The default transform for uint8 [C, H, W] tensors (see the module docstring). torchvision is
    imported here, where it is used: importing it imports torch._dynamo (4 s), which reading event
    data or a recipe does not need."""
    from torchvision.transforms import v2

    steps: list = []
    if spec.name == "imagenet":
        steps += ([v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()] if augment
                  else [v2.Resize(256, antialias=True), v2.CenterCrop(224)])
    elif augment:
        if spec.name not in ("cifar10", "cifar100"):
            raise ValueError(f"{spec.name}: no train-time augmentation is defined; use augment=False "
                             "or pass transform=...")
        steps += [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if normalize:
        steps.append(v2.Normalize(list(spec.mean), list(spec.std)))
    return v2.Compose(steps)


class ImageDataset(Dataset):
    """A static image data set: ``(float32 image [C, H, W], int label)`` samples.

    Images are held as uint8 arrays (``images``) or read from files on access (``files``).
    """

    def __init__(self, spec: ImageSpec, split: str, fmt: str, classes: tuple[str, ...], *,
                 images: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                 files: list[tuple[Path, int]] | None = None, augment: bool = False,
                 normalize: bool = True, transform: Callable | None = None):
        self.spec, self.name, self.split, self.format = spec, spec.name, split, fmt
        self.classes = classes
        self.num_classes = len(classes)
        self.in_chans = spec.in_chans
        self.input_size = (spec.in_chans, *spec.size)
        self.mean, self.std = (spec.mean, spec.std) if normalize else (None, None)
        self.augment = augment
        self.images, self.labels, self.files = images, labels, files
        self.custom_transform = transform is not None
        self.transform = transform if transform is not None else build_transform(spec, augment, normalize)

    def __len__(self) -> int:
        return len(self.files) if self.files is not None else len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.files is not None:
            path, label = self.files[index]
            size = None if self.name == "imagenet" else self.spec.size
            image = torch.from_numpy(_decode(path, "L" if self.in_chans == 1 else "RGB", size))
        else:
            image, label = self.images[index], int(self.labels[index])
        return self.transform(image), label

    def describe(self) -> dict:
        """JSON-able record of what a model trained or evaluated on this data saw."""
        transform = (f"custom {type(self.transform).__qualname__}" if self.custom_transform
                     else [repr(t) for t in self.transform.transforms])
        return {"name": self.name, "split": self.split, "format": self.format,
                "num_samples": len(self), "num_classes": self.num_classes,
                "in_chans": self.in_chans, "input_size": list(self.input_size),
                "mean": list(self.mean) if self.mean else None,
                "std": list(self.std) if self.std else None,
                "augment": self.augment, "transform": transform}


def static_dataset(name: str, root: str | os.PathLike | None = None, split: str = "train", *,
                   augment: bool = False, normalize: bool = True, transform: Callable | None = None,
                   download: bool = False) -> ImageDataset:
    """Build a static data set from its native files (see the module docstring)."""
    spec = SPECS[name]
    folder, layout = _find(name, root, check_split(split), download)
    options = dict(augment=augment, normalize=normalize, transform=transform)
    if layout.kind == "image-folder":
        folder = folder / _imagenet_folder(split)
    if layout.kind in ("png-folders", "image-folder"):
        classes = spec.classes or tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
        if not classes:
            raise MissingDataError(f"{name}: {folder} holds no class folders")
        return ImageDataset(spec, split, layout.kind, classes, files=_class_files(folder, classes),
                            **options)
    images, labels = _read_arrays(name, folder, layout)
    return ImageDataset(spec, split, layout.kind, spec.classes, images=images, labels=labels, **options)
