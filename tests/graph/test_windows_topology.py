import numpy as np
import torch

from hmgdm_core.graph import delaunay_pairs, directed_edges, gather_windows, knn_pairs


def test_window_holds_the_pixels_around_the_point_scaled_to_unit_range():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    win = gather_windows(rgb, np.array([[20.2, 25.0]]), size=8)
    assert win.shape == (1, 3 * 64) and win.dtype == torch.float32
    expected = rgb[16:24, 21:29].transpose(2, 0, 1).astype(np.float32) * 2 / 255 - 1
    assert np.allclose(win.numpy().reshape(3, 8, 8), expected)
    assert win.min() >= -1 and win.max() <= 1


def test_border_windows_are_reflected_not_zero_padded():
    rgb = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    win = gather_windows(rgb, np.array([[0, 0]]), size=4).numpy().reshape(3, 4, 4)
    padded = np.pad(rgb, ((2, 2), (2, 2), (0, 0)), mode="reflect")
    assert np.allclose(win, padded[0:4, 0:4].transpose(2, 0, 1) * 2 / 255 - 1)


def test_an_image_smaller_than_the_window_still_gives_full_windows():
    rgb = np.full((3, 5, 3), 200, np.uint8)
    win = gather_windows(rgb, np.array([[1, 2], [0, 0]]), size=32)
    assert win.shape == (2, 3072)
    assert torch.allclose(win, torch.full_like(win, 200 * 2 / 255 - 1))


def test_several_centre_sets_share_one_padding_and_cut_the_same_windows():
    from hmgdm_core.graph.windows import gather_pixel_groups, gather_pixels

    rng = np.random.default_rng(3)
    for shape, size in (((40, 60, 3), 32), ((5, 7, 3), 16), ((1, 9, 3), 4)):  # windows beyond the image too
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        groups = [np.stack([rng.integers(0, shape[0], k), rng.integers(0, shape[1], k)], 1) for k in (6, 0, 3)]
        together = gather_pixel_groups(rgb, groups, size)
        for centres, windows in zip(groups, together, strict=True):
            assert windows.shape == (len(centres), 3 * size * size)
            assert torch.equal(windows, gather_pixels(rgb, centres, size))
            # Each window is the reflected image around its centre, channel-first.
            for k, (y, x) in enumerate(centres):
                reference = gather_windows(rgb, np.array([[y, x]], dtype=float), size)
                assert torch.equal(windows[k].float() * (2 / 255) - 1, reference[0])


def test_knn_pairs_are_unique_without_self_loops_and_within_range():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (300, 2))
    pairs = knn_pairs(points, k=5, max_distance=12.0)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert len(np.unique(pairs, axis=0)) == len(pairs)
    assert (np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1) <= 12.0).all()
    degree = np.bincount(pairs.ravel(), minlength=300)
    assert degree.max() >= 5  # symmetrised union of the directed kNN relations


def test_knn_of_isolated_or_single_points_has_no_pairs():
    assert knn_pairs(np.zeros((1, 2)), 5, 10.0).shape == (0, 2)
    assert knn_pairs(np.array([[0.0, 0.0], [100.0, 100.0]]), 5, 10.0).shape == (0, 2)


def test_delaunay_respects_the_maximum_length_and_handles_degenerate_input():
    grid = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2) * 10
    pairs = delaunay_pairs(grid, max_length=10.5)
    assert len(pairs) == 2 * 5 * 4  # only the grid's horizontal and vertical neighbours
    line = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    assert delaunay_pairs(line, 5.0).tolist() == [[0, 1], [1, 2]]
    assert delaunay_pairs(line[:1], 5.0).shape == (0, 2)


def test_directed_edges_store_both_directions_with_a_shared_pair_id():
    edge_index, edge_pair = directed_edges(np.array([[0, 1], [1, 2]]))
    assert edge_index.tolist() == [[0, 1, 1, 2], [1, 2, 0, 1]]
    assert edge_pair.tolist() == [0, 1, 0, 1]
    empty_index, empty_pair = directed_edges(np.zeros((0, 2), np.int64))
    assert empty_index.shape == (2, 0) and empty_pair.shape == (0,)


def test_random_point_sets_always_give_valid_graph_topologies():
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    points_strategy = arrays(
        np.float64, st.tuples(st.integers(0, 40), st.just(2)), elements=st.floats(0, 50, allow_nan=False)
    )

    @settings(max_examples=30, deadline=None)
    @given(points=points_strategy, k=st.integers(1, 6), radius=st.floats(0.5, 30))
    def check(points, k, radius):
        for pairs in (knn_pairs(points, k, radius), delaunay_pairs(points, radius)):
            assert pairs.dtype == np.int64 and pairs.shape[1] == 2
            assert (pairs[:, 0] < pairs[:, 1]).all()
            assert len({tuple(p) for p in pairs.tolist()}) == len(pairs)
            edge_index, edge_pair = directed_edges(pairs)
            assert torch.equal(edge_index[:, : len(pairs)], edge_index[:, len(pairs) :].flip(0))
            assert torch.equal(torch.bincount(edge_pair, minlength=len(pairs)), torch.full((len(pairs),), 2))

    check()
