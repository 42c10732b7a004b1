"""The fidelity yardstick: KID ranks shifted feature sets, FD and KID of a set with itself, and Inception
features of a fixed real set computed once and cached."""

import numpy as np
import torch

from training.fidelity import cached_features, fidelity, kid


def test_kid_ranks_sets_by_how_far_they_moved():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 64))
    near, far = rng.normal(0.1, 1, size=(400, 64)), rng.normal(0.5, 1, size=(400, 64))
    k_near, k_far = kid(near, real, subsets=20, subset_size=200), kid(far, real, subsets=20, subset_size=200)
    k_same = kid(rng.normal(size=(400, 64)), real, subsets=20, subset_size=200)
    assert abs(k_same) < k_near < k_far
    assert kid(near, real, subsets=20, subset_size=200) == k_near  # fixed subsets: repeatable


def test_fidelity_of_real_faces_against_themselves_and_the_cache(face_data_dir, tmp_path):
    from training.dataset import FaceDataset

    faces = FaceDataset.load(face_data_dir, "all", progress=False).images
    heldout, train = faces[:12], faces[12:24]
    cache = tmp_path / "cache"
    same = fidelity(heldout.clone(), heldout, train, cache, n_real=12)
    assert same.n_fake == same.n_real == 12
    assert same.fid < 1e-3 < same.floor_fid  # identical sets: distance zero; two real sets: more
    assert len(list(cache.glob("inception-*.npy"))) == 2
    noise = fidelity(torch.randint(0, 256, (12, 3, 64, 64), dtype=torch.uint8), heldout, train, cache, n_real=12)
    assert noise.fid > same.floor_fid and noise.kid > same.floor_kid
    before = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert np.array_equal(cached_features(heldout, cache), cached_features(heldout, cache))
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == before  # read back, not recomputed
