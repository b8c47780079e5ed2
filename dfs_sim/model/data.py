"""Data: CIFAR-10/100 from the standard python batches at a user-given path, MNIST and Fashion-MNIST from the standard
IDX files (gzipped or not; by default from the Debian packages' folders), and scikit-learn's digits at 32×32×3.

Each data set has one input geometry (``GEOMETRY``: channels, image size, classes); the model's stem and the layer
table follow it (MNIST-like data stays 28×28 with one channel: the CIFAR ResNets are fully convolutional up to a
global average pool, so no padding to 32×32 is needed, and 23% fewer multiply-accumulates are spent on borders).
Images are kept as uint8 (N × C × H × W) and normalized per batch. ``BatchStream`` draws training batches from a
seeded ``torch.Generator`` (a fresh permutation every epoch, random crops and flips from the same generator); its
state goes into checkpoints so a resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from dfs_sim.errors import ConfigError, DfsSimError

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "GEOMETRY",
    "IDX_DEFAULT_PATHS",
    "BatchStream",
    "DataError",
    "Geometry",
    "Split",
    "load_split",
    "num_classes_of",
    "read_idx",
]


@dataclass(frozen=True)
class Geometry:
    """What a data set's inputs look like to the model: ``channels`` × ``size`` × ``size`` images, ``num_classes``."""

    channels: int
    size: int
    num_classes: int


GEOMETRY = {
    "cifar10": Geometry(3, 32, 10),
    "cifar100": Geometry(3, 32, 100),
    "digits": Geometry(3, 32, 10),
    "mnist": Geometry(1, 28, 10),
    "fashion-mnist": Geometry(1, 28, 10),
}
DATASETS = tuple(GEOMETRY)
AUGMENTATIONS = ("none", "crop", "crop_flip")
CROP_PADDING = 4  # pixels of zero padding for the random crop, as in the CIFAR ResNet recipe
_STATS = {  # per-channel mean and std of the training images, in [0, 1] (computed from the training files)
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
}
IDX_DEFAULT_PATHS = {  # Debian's dataset-fashion-mnist puts its files here; MNIST is looked for in the same layout
    "mnist": "/usr/share/datasets/mnist",
    "fashion-mnist": "/usr/share/datasets/fashion-mnist",
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FILES = {
    "cifar10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
    "cifar100": {"train": ["train"], "test": ["test"]},
}
_LABEL_KEYS = {"cifar10": b"labels", "cifar100": b"fine_labels"}
DIGITS_TEST_SIZE = 360  # of 1797 images


class DataError(DfsSimError):
    """A data set is missing, unreadable or malformed."""


def num_classes_of(dataset: str) -> int:
    return GEOMETRY[dataset].num_classes


@dataclass(frozen=True)
class Split:
    """One split of a data set: uint8 images, int64 labels and the inputs' ids (their index in the source)."""

    name: str
    dataset: str
    images: torch.Tensor
    labels: torch.Tensor
    input_ids: torch.Tensor
    mean: tuple[float, ...]  # per channel
    std: tuple[float, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255.0 - mean) / std

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.normalize(self.images[index]), self.labels[index]

    def subset(self, index: torch.Tensor, name: str) -> Split:
        """The inputs at ``index`` (their ids kept), normalized as this split is."""
        return Split(
            name, self.dataset, self.images[index], self.labels[index], self.input_ids[index], self.mean, self.std
        )


def split_validation(train_split: Split, fraction: float, seed: int) -> tuple[Split, Split | None]:
    """``(training part, validation part)``: a seeded ``fraction`` of ``train_split`` held out (None when it rounds
    to no image); what training evaluates on and what calibration must not see."""
    count = round(len(train_split) * fraction)
    if count == 0:
        return train_split, None
    if count >= len(train_split):
        raise ConfigError("validation_fraction", f"leaves no training data ({len(train_split)} images)")
    order = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(seed))
    held, kept = order[:count].sort().values, order[count:].sort().values
    return train_split.subset(kept, "train"), train_split.subset(held, "validation")


def load_split(dataset: str, split: str, path: str | Path | None = None, split_seed: int = 0) -> Split:
    """Load ``split`` ("train" or "test") of ``dataset``; CIFAR needs ``path``, MNIST-like data sets default to the
    Debian package's folder, digits needs nothing."""
    if dataset not in DATASETS:
        raise DataError("dataset", f"unknown data set {dataset!r}; valid: {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise DataError("split", f"unknown split {split!r}; valid: train, test")
    if dataset == "digits":
        return _digits(split, split_seed)
    if dataset in IDX_DEFAULT_PATHS:
        return _idx_split(dataset, split, path)
    return _cifar(dataset, split, path)


def _digits(split: str, split_seed: int) -> Split:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False).clamp_(0, 1)
    images = torch.round(images * 255).to(torch.uint8).repeat(1, 3, 1, 1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = np.random.default_rng(split_seed).permutation(len(labels))
    test_ids, train_ids = np.sort(order[:DIGITS_TEST_SIZE]), np.sort(order[DIGITS_TEST_SIZE:])
    train = images[torch.from_numpy(train_ids)].float() / 255.0
    mean = tuple(float(train[:, c].mean()) for c in range(3))
    std = tuple(float(train[:, c].std()) for c in range(3))
    ids = torch.from_numpy(train_ids if split == "train" else test_ids)
    return Split(split, "digits", images[ids].contiguous(), labels[ids], ids.to(torch.int64), mean, std)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR python batches only: dicts, lists, bytes and numpy arrays, never arbitrary classes."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _cifar(dataset: str, split: str, path: str | Path | None) -> Split:
    if path is None:
        raise DataError(dataset, "needs a data path (the folder with the python batches, e.g. cifar-10-batches-py)")
    folder = Path(path)
    if folder.is_file():
        names = ", ".join(_CIFAR_FILES[dataset]["train"][:1] + _CIFAR_FILES[dataset]["test"])
        raise DataError(
            folder, f"is a file, not a folder: give the folder with the {dataset} python batches ({names}, ...)"
        )
    if not folder.is_dir():
        raise DataError(folder, f"data folder for {dataset} does not exist")
    images, labels = [], []
    for file_name in _CIFAR_FILES[dataset][split]:
        file = folder / file_name
        if not file.is_file():
            raise DataError(file, f"missing {dataset} batch file {file_name!r}")
        try:
            with open(file, "rb") as handle:
                entry = _BatchUnpickler(handle, encoding="bytes").load()
            data = np.asarray(entry[b"data"], dtype=np.uint8)
            target = np.asarray(entry[_LABEL_KEYS[dataset]], dtype=np.int64)
        except Exception as error:  # a damaged pickle can fail in almost any way; all of them mean "not a batch"
            raise DataError(file, f"not a {dataset} python batch ({type(error).__name__}: {str(error)[:80]})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != target.shape[0]:
            raise DataError(file, f"malformed batch: data {data.shape}, labels {target.shape}; expected N×3072 and N")
        if target.size and (target.min() < 0 or target.max() >= num_classes_of(dataset)):
            raise DataError(file, f"labels outside 0..{num_classes_of(dataset) - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(target)
    stacked = torch.from_numpy(np.concatenate(images))
    mean, std = _STATS[dataset]
    return Split(
        split,
        dataset,
        stacked,
        torch.from_numpy(np.concatenate(labels)),
        torch.arange(stacked.shape[0], dtype=torch.int64),
        mean,
        std,
    )


_IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # unsigned bytes, 1 or 3 dimensions


def read_idx(file: str | Path, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file (gzipped or not) with ``ndim`` dimensions; anything malformed is a one-line
    ``DataError`` naming the file: the magic number, the dimensions, a truncated or overlong body."""
    file = Path(file)
    try:
        with open(file, "rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DataError(file, f"unreadable ({type(error).__name__}: {str(error)[:80]})") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(file, f"truncated: {len(raw)} bytes, shorter than an IDX header")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != _IDX_MAGIC[ndim]:
        raise DataError(
            file,
            f"not an IDX file of unsigned bytes with {ndim} dimension(s): magic number "
            f"0x{magic:08x}, expected 0x{_IDX_MAGIC[ndim]:08x}",
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(file, f"{kind}: {len(raw)} bytes, the header's shape {list(shape)} needs {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(folder / stem, f"missing IDX file {stem!r} (or {stem}.gz)")


def _idx_split(dataset: str, split: str, path: str | Path | None) -> Split:
    folder = Path(path if path is not None else IDX_DEFAULT_PATHS[dataset])
    if not folder.is_dir():
        hint = " (apt-get install dataset-fashion-mnist)" if path is None and dataset == "fashion-mnist" else ""
        raise DataError(folder, f"data folder for {dataset} does not exist{hint}")
    image_stem, label_stem = _IDX_FILES[split]
    image_file, label_file = _find_idx(folder, image_stem), _find_idx(folder, label_stem)
    images, labels = read_idx(image_file, 3), read_idx(label_file, 1)
    geometry = GEOMETRY[dataset]
    if images.shape[1:] != (geometry.size, geometry.size):
        raise DataError(
            image_file,
            f"images are {images.shape[1]}×{images.shape[2]}, {dataset} images are {geometry.size}×{geometry.size}",
        )
    if images.shape[0] == 0:
        raise DataError(image_file, "holds no images")
    if images.shape[0] != labels.shape[0]:
        raise DataError(label_file, f"{labels.shape[0]} labels for the {images.shape[0]} images of {image_file.name}")
    if labels.max() >= geometry.num_classes:
        raise DataError(label_file, f"labels outside 0..{geometry.num_classes - 1} (found {int(labels.max())})")
    mean, std = _STATS[dataset]
    return Split(
        split,
        dataset,
        torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        torch.arange(images.shape[0], dtype=torch.int64),
        mean,
        std,
    )


class BatchStream:
    """Endless seeded training batches: a new permutation per epoch, then random crop (zero padding
    ``CROP_PADDING``) and flip."""

    def __init__(self, split: Split, batch_size: int, seed: int, augment: str = "crop_flip") -> None:
        if augment not in AUGMENTATIONS:
            raise DataError("augment", f"unknown augmentation {augment!r}; valid: {', '.join(AUGMENTATIONS)}")
        self.split, self.batch_size, self.augment = split, batch_size, augment
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(split), generator=self.generator)
        self.position = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.position + self.batch_size > len(self.order):  # drop the incomplete tail, start a new epoch
            self.order = torch.randperm(len(self.split), generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        images = self.split.images[index]
        if self.augment != "none":
            images = self._crop_flip(images)
        return self.split.normalize(images), self.split.labels[index]

    def _crop_flip(self, images: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        pad = CROP_PADDING
        padded = F.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=self.generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=self.generator)
        rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
        cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w).expand(n, c, h, w)
        out = padded.gather(2, rows).gather(3, cols)
        if self.augment == "crop_flip":
            flip = torch.rand(n, generator=self.generator) < 0.5
            out = torch.where(flip.view(n, 1, 1, 1), out.flip(3), out)
        return out

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order.clone(), "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        """Continue a saved stream; a state that does not fit this split raises ``ValueError``."""
        try:
            order, position = state["order"], int(state["position"])
            if not isinstance(order, torch.Tensor) or order.dtype != torch.int64 or order.shape != (len(self.split),):
                raise ValueError(f"its epoch order does not fit the {len(self.split)} training images")
            if not 0 <= position <= len(order):
                raise ValueError(f"position {position} is outside the epoch")
            generator = torch.Generator()
            generator.set_state(state["generator"])
        except (KeyError, TypeError, RuntimeError) as error:
            raise ValueError(f"not a batch-stream state ({type(error).__name__})") from None
        self.generator, self.order, self.position = generator, order.clone(), position
