"""Row masking, the per-image random transforms, and the cells each setting needs."""

import pytest
import torch
import torch.nn.functional as F

from selfconsistency.images.settings import expand_settings, measure_pairs, measure_shapes, plan_ratios
from selfconsistency.images.transforms import affine_matrices, keep_top_rows, max_shift_pixels, random_affine


def images(n=6, c=1, h=8, w=8, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_keep_top_rows_zeroes_exactly_the_bottom_rows():
    x = images() + 0.1  # no zero pixels
    for t in range(9):
        y = keep_top_rows(x, t)
        assert torch.equal(y[:, :, :t], x[:, :, :t]) and bool((y[:, :, t:] == 0).all())
    with pytest.raises(ValueError, match="rows t"):
        keep_top_rows(x, 9)


def test_translation_shifts_each_image_by_its_own_integer_offset():
    x = images(n=32)
    y = random_affine(x, "translation", torch.Generator().manual_seed(3))
    theta = affine_matrices("translation", 32, 8, 8, torch.Generator().manual_seed(3))
    dx = torch.round(-theta[:, 0, 2] * 8 / 2).long()
    dy = torch.round(-theta[:, 1, 2] * 8 / 2).long()
    m = max_shift_pixels(8)
    assert m == 1 and int(dx.abs().max()) <= m and int(dy.abs().max()) <= m
    assert len(set(zip(dx.tolist(), dy.tolist(), strict=True))) > 1  # per image, not one draw for the batch
    for i in range(32):  # bilinear sampling of an integer shift is the exact shift, zeros shifted in
        expected = torch.zeros_like(x[i])
        sy, sx = int(dy[i]), int(dx[i])
        src = x[i][:, max(0, -sy) : 8 - max(0, sy), max(0, -sx) : 8 - max(0, sx)]
        expected[:, max(0, sy) : 8 - max(0, -sy), max(0, sx) : 8 - max(0, -sx)] = src
        assert torch.allclose(y[i], expected, atol=1e-5), i
    assert max_shift_pixels(28) == 3 and max_shift_pixels(32) == 3  # the paper's 3 px on MNIST


def test_rotation_and_scaling_draw_per_image_parameters_in_the_papers_ranges():
    g = torch.Generator().manual_seed(0)
    rot = affine_matrices("rotation", 500, 8, 8, g)
    angles = torch.rad2deg(torch.atan2(rot[:, 1, 0], rot[:, 0, 0]))
    assert float(angles.abs().max()) <= 20.0 and float(angles.abs().max()) > 18.0 and angles.std() > 5
    scale = 1.0 / affine_matrices("scaling", 500, 8, 8, g)[:, 0, 0]
    assert 1.0 <= float(scale.min()) and float(scale.max()) <= 1.2 + 1e-6 and scale.std() > 0.03
    # a zoom about the centre: the centre of an odd-sized image keeps its value
    x = images(n=4, h=9, w=9)
    y = random_affine(x, "scaling", torch.Generator().manual_seed(1))
    assert torch.allclose(y[:, :, 4, 4], x[:, :, 4, 4], atol=1e-5)


def test_rotation_matches_a_rotated_grid_per_image():
    x = images(n=3)
    g = torch.Generator().manual_seed(5)
    y = random_affine(x, "rotation", g)
    theta = affine_matrices("rotation", 3, 8, 8, torch.Generator().manual_seed(5))
    for i in range(3):
        grid = F.affine_grid(theta[i : i + 1], [1, 1, 8, 8], align_corners=False)
        assert torch.allclose(y[i : i + 1], F.grid_sample(x[i : i + 1], grid, align_corners=False), atol=1e-6)
    assert not torch.allclose(theta[0], theta[1])


def test_transforms_are_reproducible_and_checked():
    x = images()
    a = random_affine(x, "rotation", torch.Generator().manual_seed(7))
    b = random_affine(x, "rotation", torch.Generator().manual_seed(7))
    c = random_affine(x, "rotation", torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="transform must be one of"):
        random_affine(x, "shear", torch.Generator())


def test_settings_share_their_references_and_skip_undefined_rows():
    ratios = plan_ratios(("masking",), (0, 2, 4, 8), 8, dp_offset=3)
    base = [r for r in ratios if r.setting == "baseline"]
    assert [r.t for r in base] == [0, 2, 4, 8] and {r.denominator for r in base} == {("rows", 8)}
    dp = [r for r in ratios if r.setting == "data-processing"]
    assert [(r.t, r.denominator) for r in dp] == [(4, ("rows", 4)), (8, ("rows", 8))]  # t1 >= 3
    add = [r for r in ratios if r.setting == "additivity"]
    assert [r.t for r in add] == [2, 4, 8] and all(r.ideal == 2.0 for r in add)
    cells = {m for r in ratios for m in (r.numerator, r.denominator)}
    # every reference is itself a cell of the baseline: nothing is trained twice
    assert {r.denominator for r in ratios} <= {r.numerator for r in base}
    assert len(cells) == 4 + 2 + 3
    assert expand_settings(["transforms", "baseline"]) == ("baseline", "scaling", "rotation", "translation")
    with pytest.raises(ValueError, match="unknown setting"):
        expand_settings(["baseline", "shuffling"])
    with pytest.raises(ValueError, match="rows must be ints"):
        plan_ratios(("baseline",), (0, 9), 8)


def test_measure_pairs_build_the_three_settings():
    x = images(n=10) + 0.1
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert measure_shapes("rows-dp", (1, 8, 8)) == ((2, 8, 8), (2, 8, 8))
    a, b = measure_pairs("rows-dp", 5, x, g(), dp_offset=3)
    assert torch.equal(a, torch.cat([x, x], 1))
    assert torch.equal(b[:, :1], keep_top_rows(x, 5)) and torch.equal(b[:, 1:], keep_top_rows(x, 2))
    a, b = measure_pairs("rows-add", 4, x, g())
    assert torch.equal(a[:, :1], x) and torch.equal(b[:, 1:], keep_top_rows(a[:, 1:], 4))
    assert not torch.equal(a[:, 1:], x)  # the second image is another one
    # transforms: the reference Y = T(X) and the -dp / -add cells share T on the same images
    _, y = measure_pairs("rotation", None, x, g())
    _, ydp = measure_pairs("rotation-dp", None, x, g())
    _, yadd = measure_pairs("rotation-add", None, x, g())
    assert torch.equal(ydp[:, :1], y) and torch.equal(yadd[:, :1], y)
    assert not torch.allclose(ydp[:, 1:], y)  # h(Y) is a fresh transform of Y
