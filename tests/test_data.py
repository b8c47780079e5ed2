"""Data: the digits split, CIFAR python batches (with clear errors), and the seeded batch stream."""

import pickle

import numpy as np
import pytest
import torch

from dfs_sim.model.data import BatchStream, DataError, load_split


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
