"""Reading MNIST idx files, fake and (where present) real."""

import gzip

import numpy as np
import pytest
import torch

from conftest import real_mnist_root, write_idx
from experiments.mnist.data import MEAN, STD, load_split, read_idx


def test_read_idx_plain_and_gzipped(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "a.gz", array)
    (tmp_path / "a").write_bytes(gzip.decompress((tmp_path / "a.gz").read_bytes()))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)
    assert np.array_equal(read_idx(tmp_path / "a"), array)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 12)
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short.gz", np.zeros((3, 28, 28)))
    data = gzip.decompress((tmp_path / "short.gz").read_bytes())[:-5]
    (tmp_path / "short").write_bytes(data)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


def test_fake_split_is_normalised(fake_mnist):
    x, y = load_split(fake_mnist, "test", download=False)
    assert x.shape == (300, 784) and x.dtype == torch.float32
    assert y.shape == (300,) and y.dtype == torch.int64
    assert torch.allclose(x.max(), torch.tensor((1 - MEAN) / STD))


@pytest.mark.skipif(
    real_mnist_root() is None,
    reason="no real MNIST: set STRUCTURAL_DROPOUT_DATA to a folder holding MNIST/raw/*.gz "
    "(or put them in data/) to run it",
)
def test_real_mnist():
    x, y = load_split(real_mnist_root(), "train", download=False)
    assert x.shape == (60000, 784)
    assert torch.bincount(y)[:2].tolist() == [5923, 6742]
    assert abs(x.mean().item()) < 1e-3 and abs(x.std().item() - 1) < 1e-3
    x, y = load_split(real_mnist_root(), "test", download=False)
    assert x.shape == (10000, 784) and y[:5].tolist() == [7, 2, 1, 0, 4]
