"""Data: the digits split, CIFAR python batches and MNIST-style IDX files (with clear errors), and the seeded batch
stream."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from dfs_sim.model.data import GEOMETRY, BatchStream, DataError, Geometry, load_split


def test_digits_split_is_fixed_seeded_and_disjoint():
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert len(train) == 1437 and len(test) == 360
    assert train.images.shape == (1437, 3, 32, 32) and train.images.dtype == torch.uint8
    assert not set(train.input_ids.tolist()) & set(test.input_ids.tolist())
    again = load_split("digits", "test")
    assert torch.equal(again.input_ids, test.input_ids) and torch.equal(again.images, test.images)
    other = load_split("digits", "test", split_seed=1)
    assert not torch.equal(other.input_ids, test.input_ids)
    assert sorted(torch.unique(test.labels).tolist()) == list(range(10))


def _write_cifar10(folder, n=6, corrupt=None):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        if name == corrupt:
            (folder / name).write_bytes(b"not a pickle")
            continue
        with open(folder / name, "wb") as handle:
            pickle.dump(entry, handle)


def test_cifar10_batches_load(tmp_path):
    _write_cifar10(tmp_path)
    train, test = load_split("cifar10", "train", tmp_path), load_split("cifar10", "test", tmp_path)
    assert len(train) == 30 and len(test) == 6
    assert train.images.shape == (30, 3, 32, 32)
    x, y = train.batch(torch.arange(4))
    assert x.dtype == torch.float32 and y.dtype == torch.int64


def test_cifar_errors_name_the_path_or_file(tmp_path):
    with pytest.raises(DataError, match="needs a data path"):
        load_split("cifar10", "train")
    with pytest.raises(DataError, match="does not exist"):
        load_split("cifar10", "train", tmp_path / "nowhere")
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"archive")
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz: is a file, not a folder: .*data_batch_1"):
        load_split("cifar10", "train", tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DataError, match=r"is a file, not a folder: .* cifar100 python batches \(train, test"):
        load_split("cifar100", "test", tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DataError, match="test_batch"):
        load_split("cifar10", "test", tmp_path)
    _write_cifar10(tmp_path, corrupt="data_batch_3")
    with pytest.raises(DataError, match="data_batch_3"):
        load_split("cifar10", "train", tmp_path)
    with open(tmp_path / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, handle)
    with pytest.raises(DataError, match="malformed"):
        load_split("cifar10", "test", tmp_path)
    with pytest.raises(DataError, match="unknown data set"):
        load_split("imagenet", "train")


def test_batch_stream_is_seeded_and_resumable():
    split = load_split("digits", "train")
    a, b = BatchStream(split, 64, seed=3), BatchStream(split, 64, seed=3)
    for _ in range(30):  # crosses an epoch boundary
        xa, ya = a.next()
        xb, yb = b.next()
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    state = a.state_dict()
    expected = [a.next() for _ in range(5)]
    c = BatchStream(split, 64, seed=99)
    c.load_state_dict(state)
    for x, y in expected:
        xc, yc = c.next()
        assert torch.equal(x, xc) and torch.equal(y, yc)


def test_crop_is_a_shifted_window_of_the_padded_image():
    split = load_split("digits", "train")
    stream = BatchStream(split, 8, seed=0, augment="crop")
    generator_state = stream.generator.get_state()
    x, _ = stream.next()
    replay = torch.Generator()
    replay.set_state(generator_state)
    order = torch.randperm(len(split), generator=replay)  # the stream's first epoch order was drawn at init
    assert x.shape == (8, 3, 32, 32)
    raw = split.normalize(torch.nn.functional.pad(split.images[stream.order[:8]], (4, 4, 4, 4)))
    for i in range(8):  # every crop appears somewhere in its padded image
        windows = raw[i].unfold(1, 32, 1).unfold(2, 32, 1)  # 3 × 9 × 9 × 32 × 32
        assert any(torch.equal(windows[:, dy, dx], x[i]) for dy in range(9) for dx in range(9))
    del order


def _idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def _write_fashion(folder, n_train=12, n_test=5, compress=False, size=28):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, array in (
            ("images-idx3-ubyte", rng.integers(0, 256, (n, size, size))),
            ("labels-idx1-ubyte", np.arange(n) % 10),
        ):
            data = _idx_bytes(np.asarray(array))
            name = f"{prefix}-{kind}"
            if compress:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_idx_files_load_at_their_own_geometry(tmp_path, compress):
    folder = _write_fashion(tmp_path / "fm", compress=compress)
    train, test = load_split("fashion-mnist", "train", folder), load_split("fashion-mnist", "test", folder)
    assert len(train) == 12 and len(test) == 5
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.labels.tolist() == [0, 1, 2, 3, 4] and test.input_ids.tolist() == list(range(5))
    raw = np.frombuffer(
        gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
        if compress
        else (folder / "t10k-images-idx3-ubyte").read_bytes(),
        np.uint8,
        offset=16,
    )
    assert np.array_equal(test.images.numpy().reshape(-1), raw)
    x, _ = train.batch(torch.arange(3))
    assert x.shape == (3, 1, 28, 28) and torch.allclose(
        x[0, 0, 0, 0], (train.images[0, 0, 0, 0] / 255 - 0.2860) / 0.3530
    )
    stream = BatchStream(train, 4, seed=0, augment="crop_flip")
    assert stream.next()[0].shape == (4, 1, 28, 28)
    assert GEOMETRY["fashion-mnist"] == Geometry(1, 28, 10)


def test_idx_defaults_to_the_debian_folder(monkeypatch, tmp_path):
    import dfs_sim.model.data as data

    monkeypatch.setitem(data.IDX_DEFAULT_PATHS, "mnist", str(_write_fashion(tmp_path / "debian")))
    assert len(load_split("mnist", "test")) == 5
    monkeypatch.setitem(data.IDX_DEFAULT_PATHS, "fashion-mnist", str(tmp_path / "absent"))
    with pytest.raises(DataError, match=r"absent: data folder for fashion-mnist does not exist \(apt-get install "):
        load_split("fashion-mnist", "train")


@pytest.mark.parametrize(
    "file, content, message",
    [
        (
            "t10k-images-idx3-ubyte",
            struct.pack(">I", 0x0801) + b"\0" * 12,
            r"t10k-images-idx3-ubyte: not an IDX file .*magic number 0x00000801",
        ),
        ("t10k-images-idx3-ubyte", _idx_bytes(np.zeros((5, 28, 28)))[:-1], r"t10k-images-idx3-ubyte: truncated"),
        ("t10k-images-idx3-ubyte", _idx_bytes(np.zeros((5, 28, 28))) + b"x", r"t10k-images-idx3-ubyte: has trailing"),
        ("t10k-images-idx3-ubyte", b"\0\0", r"t10k-images-idx3-ubyte: truncated: 2 bytes"),
        ("t10k-images-idx3-ubyte", _idx_bytes(np.zeros((5, 32, 32))), r"t10k-images-idx3-ubyte: images are 32×32"),
        ("t10k-images-idx3-ubyte", _idx_bytes(np.zeros((0, 28, 28))), r"t10k-images-idx3-ubyte: holds no images"),
        ("t10k-labels-idx1-ubyte", _idx_bytes(np.arange(4)), r"t10k-labels-idx1-ubyte: 4 labels for the 5 images"),
        ("t10k-labels-idx1-ubyte", _idx_bytes(np.array([0, 1, 2, 3, 10])), r"labels-idx1-ubyte: labels outside 0\.\.9"),
        ("t10k-labels-idx1-ubyte", b"\x1f\x8b\x08not gzip at all", r"t10k-labels-idx1-ubyte: unreadable"),
    ],
)
def test_idx_errors_name_the_file(tmp_path, file, content, message):
    folder = _write_fashion(tmp_path / "fm")
    (folder / file).write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        load_split("fashion-mnist", "test", folder)
    assert "\n" not in str(error.value)
    assert len(load_split("fashion-mnist", "train", folder)) == 12  # the other split's files are untouched


def test_idx_missing_file_and_gzip_truncation(tmp_path):
    folder = _write_fashion(tmp_path / "fm", compress=True)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        DataError,
        match=r"train-labels-idx1-ubyte: missing IDX file .* \(or train-labels-idx1-ubyte"
        r"\.gz\)",
    ):
        load_split("fashion-mnist", "train", folder)
    data = (folder / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: unreadable \(EOFError"):
        load_split("fashion-mnist", "test", folder)
