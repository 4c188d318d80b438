"""The network-free field metrics against independent computations: scipy's 1-D Wasserstein
distance, a closed form for the sliced distance of a translated set, power-law Gaussian random
fields of known slope, white noise, exact pyramid reconstruction, floors, content keys."""

import os

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gankit import field_cache
from gankit import field_metrics as fm

SMALL = dict(patches_per_image=16, directions=64, repeats=2, quantile_levels=1024)


def power_law_fields(n, size, slope, rng, channels=1):
    """Gaussian random fields with P(k) proportional to k^slope: white noise filtered in
    Fourier space by k^(slope/2) (the k = 0 mode removed), scaled to unit variance."""
    k = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2) * size
    amplitude = np.zeros_like(k)
    amplitude[k > 0] = k[k > 0] ** (slope / 2)
    noise = rng.standard_normal((n, channels, size, size))
    fields = np.fft.ifft2(np.fft.fft2(noise) * amplitude).real
    return fields / fields.std()


def fitted_slope(spectrum, k_low, k_high):
    """The slope of log P against log k over k_low .. k_high."""
    k = np.arange(k_low, k_high + 1)
    return np.polyfit(np.log(k), np.log(spectrum[k]), 1)[0]


# ---- Wasserstein distances ----


@pytest.mark.parametrize("m, n", [(40, 40), (40, 25), (7, 13)])
def test_w1_of_sorted_samples_is_scipys(m, n):
    rng = np.random.default_rng(0)
    a = np.sort(rng.standard_normal((3, m)), axis=1)
    b = np.sort(rng.gamma(2.0, size=(3, n)), axis=1)
    expected = [scipy_stats.wasserstein_distance(a[i], b[i]) for i in range(3)]
    np.testing.assert_allclose(fm.wasserstein_1d_sorted(a, b), expected, rtol=1e-12)


def test_swd_of_one_dimensional_sets_is_their_w1():
    # in 1-D every unit direction is +1 or -1: the sliced distance is W1 itself
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((50, 1)), rng.exponential(size=(30, 1))
    swd = fm.sliced_wasserstein(a, b, np.random.default_rng(2), directions=8, repeats=2)
    assert swd == pytest.approx(scipy_stats.wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-12)


def test_swd_is_the_mean_of_scipys_w1_over_the_drawn_directions():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((20, 4)), rng.standard_normal((35, 4)) * 2 + 0.5
    swd = fm.sliced_wasserstein(a, b, np.random.default_rng(4), directions=5, repeats=3)
    directions = np.random.default_rng(4)  # the same draws, one repeat after the other
    by_direction = []
    for _ in range(3):
        unit = directions.standard_normal((4, 5))
        for theta in (unit / np.linalg.norm(unit, axis=0)).T:
            by_direction.append(scipy_stats.wasserstein_distance(a @ theta, b @ theta))
    assert swd == pytest.approx(np.mean(by_direction), rel=1e-10)


def test_swd_of_identical_sets_is_zero_and_of_a_translate_is_its_closed_form():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((200, 3))
    assert fm.sliced_wasserstein(a, a.copy(), rng) == 0.0
    # a translate by v: each projection moves by |v . theta|, whose mean over unit directions
    # in 3-D is |v| / 2
    shift = np.array([3.0, -4.0, 0.0])
    swd = fm.sliced_wasserstein(a + shift, a, rng, directions=512, repeats=4)
    assert swd == pytest.approx(5.0 / 2, rel=0.03)


def test_value_w1_is_scipys_w1_of_each_channels_values():
    rng = np.random.default_rng(6)
    real = rng.standard_normal((4, 2, 16, 16))  # 1024 values a channel
    fake = rng.standard_normal((2, 2, 16, 16)) * 1.5 + 0.3  # 512: both divide 4096 levels
    distances = fm.value_w1(fm.value_quantiles(fake), fm.value_quantiles(real))
    for c in range(2):
        expected = scipy_stats.wasserstein_distance(fake[:, c].ravel(), real[:, c].ravel())
        assert distances[c] == pytest.approx(expected, rel=1e-9)


def test_value_w1_with_counts_that_do_not_divide_the_levels_is_within_its_bound():
    rng = np.random.default_rng(7)
    real, fake = rng.standard_normal((3, 1, 17, 19)), rng.uniform(-1, 2, (5, 1, 16, 16))
    levels = 512
    quantiles_fake = fm.value_quantiles(fake, levels=levels)
    quantiles_real = fm.value_quantiles(real, levels=levels)
    expected = scipy_stats.wasserstein_distance(fake.ravel(), real.ravel())
    bound = (np.ptp(fake) + np.ptp(real)) / levels
    assert abs(fm.value_w1(quantiles_fake, quantiles_real)[0] - expected) <= bound


# ---- the pyramid ----


@pytest.mark.parametrize("size, levels", [(32, 2), (64, 3)])
def test_laplacian_pyramid_reconstructs_the_images(size, levels):
    images = np.random.default_rng(8).standard_normal((3, 2, size, size))
    pyramid = fm.laplacian_pyramid(images, levels)
    assert [p.shape[-1] for p in pyramid] == fm.pyramid_resolutions(size)
    np.testing.assert_allclose(fm.reconstruct_from_pyramid(pyramid), images, atol=1e-12)


def test_pyramid_filter_keeps_a_constant_and_a_linear_ramp():
    # the binomial filter is normalised and symmetric; the mirrored edges keep a constant
    constant = np.full((1, 1, 16, 16), 2.5)
    np.testing.assert_allclose(fm.pyramid_down(constant), np.full((1, 1, 8, 8), 2.5))
    np.testing.assert_allclose(fm.pyramid_up(constant), np.full((1, 1, 32, 32), 2.5))
    ramp = np.broadcast_to(np.arange(16.0), (1, 1, 16, 16))
    np.testing.assert_allclose(fm.pyramid_down(ramp)[0, 0, :, 1:-1], ramp[0, 0, ::2, 2:-2:2])


def test_random_patches_are_the_images_windows():
    images = np.random.default_rng(9).standard_normal((2, 3, 16, 16))
    patches = fm.random_patches(images, 5, 7, np.random.default_rng(10))
    assert patches.shape == (10, 3, 7, 7)
    windows = np.lib.stride_tricks.sliding_window_view(images, (7, 7), axis=(2, 3))
    for i, patch in enumerate(patches):
        image = windows[i // 5].transpose(1, 2, 0, 3, 4).reshape(-1, 3, 7, 7)
        assert any(np.array_equal(patch, w) for w in image)


# ---- spectra ----


def test_spectrum_of_a_power_law_field_recovers_its_slope():
    fields = power_law_fields(16, 64, -3.0, np.random.default_rng(11))
    spectrum = fm.radial_power_spectrum(fields)[0]
    assert spectrum.shape == (33,)
    assert fitted_slope(spectrum, 2, 32) == pytest.approx(-3.0, abs=0.1)


def test_spectrum_of_white_noise_is_flat_at_its_variance():
    sigma = 0.7
    noise = np.random.default_rng(12).standard_normal((64, 2, 64, 64)) * sigma
    spectrum = fm.radial_power_spectrum(noise)
    np.testing.assert_allclose(spectrum[:, 1:], sigma**2, rtol=0.2)
    assert abs(fitted_slope(spectrum[0], 1, 32)) < 0.05


def test_spectrum_error_is_the_mean_log_ratio():
    real = np.array([[9.0, 1.0, 0.5, 0.25]])
    fake = np.array([[1.0, 2.0, 0.5, 0.125]])  # k = 0 is not compared
    assert fm.spectrum_log_error(fake, real) == pytest.approx(2 * np.log(2) / 3)


# ---- floors and the whole comparison ----


@pytest.fixture(scope="module")
def real_fields():
    return power_law_fields(128, 32, -3.0, np.random.default_rng(13), channels=2)


@pytest.fixture(scope="module")
def real_stats(real_fields):
    # the paper's 128 patches an image: with fewer, the floor of swd is high
    return fm.reference_stats(real_fields, seed=0, **dict(SMALL, patches_per_image=128))


MEASURES = ("swd_32", "swd_16", "swd", "value_w1", "spectrum_error")


def test_floors_are_far_below_a_different_distribution(real_stats):
    rng = np.random.default_rng(14)
    same = fm.field_metrics(power_law_fields(64, 32, -3.0, rng, channels=2), real_stats)
    white_noise = fm.field_metrics(rng.standard_normal((64, 2, 32, 32)) * 1.5 + 0.5, real_stats)
    assert set(white_noise) == {f"{m}{end}" for m in MEASURES for end in ("", "_floor")}
    for measure in MEASURES:
        floor = white_noise[f"{measure}_floor"]
        assert same[measure] < 1.5 * floor, measure  # another sample of the real fields
        assert white_noise[measure] > (2 if "swd" in measure else 10) * floor, measure
    assert real_stats["floor_value_w1"] < 0.05  # of a unit standard deviation
    assert real_stats["floor_spectrum_error"] < 0.1


def test_floors_are_the_halves_measures_as_stored(real_fields):
    fields = real_fields[:40]
    stats = fm.reference_stats(fields, seed=5, **SMALL)
    stored = {k[len("floor_") :]: float(v) for k, v in stats.items() if k.startswith("floor_")}
    assert fm.floors(fields, seed=5, **SMALL) == stored
    order = np.random.default_rng([5, 1]).permutation(40)  # floors' halves, by hand
    first = fm.reference_stats(fields[np.sort(order[:20])], **SMALL)
    second = fm.reference_stats(fields[np.sort(order[20:])], **SMALL)
    values = fm.value_w1(first["value_quantiles"], second["value_quantiles"]).mean()
    assert stored["value_w1"] == pytest.approx(values, rel=1e-12)
    spectra = fm.spectrum_log_error(first["power_spectrum"], second["power_spectrum"])
    assert stored["spectrum_error"] == pytest.approx(spectra, rel=1e-12)


def test_one_channel_at_64_has_three_levels():
    fields = power_law_fields(8, 64, -2.0, np.random.default_rng(15))
    stats = fm.reference_stats(fields, **SMALL)
    scores = fm.field_metrics(fields[:4] * 2.0, stats)
    assert {"swd_64", "swd_32", "swd_16"} <= set(scores)
    assert stats["descriptors_64"].shape == (8 * 16, 49)
    assert scores["value_w1"] > 0.5  # twice the amplitude: SWD alone would not see it


def test_wrong_shapes_are_refused(real_stats):
    with pytest.raises(ValueError, match="channels x height x width"):
        fm.field_metrics(np.zeros((4, 1, 32, 32)), real_stats)
    with pytest.raises(ValueError, match="N x C x H x W"):
        fm.reference_stats(np.zeros((4, 32, 32)))
    with pytest.raises(ValueError, match="unknown settings"):
        fm.reference_stats(np.zeros((4, 1, 32, 32)), patch=5)


# ---- content keys and the cache ----


def test_content_key_follows_the_content_not_the_file(tmp_path):
    data = np.random.default_rng(16).standard_normal((10, 1, 16, 16)).astype(np.float32)
    first = tmp_path / "a.npy"
    np.save(first, data)
    key = field_cache.content_key(np.load(first, mmap_mode="r"), chunk_bytes=3000)  # several chunks
    assert key == field_cache.content_key(data)
    renamed = tmp_path / "b.npy"
    os.rename(first, renamed)
    assert field_cache.content_key(np.load(renamed, mmap_mode="r")) == key
    changed = data.copy()
    changed[7, 0, 3, 4] += 1e-3
    assert field_cache.content_key(changed) != key
    assert field_cache.content_key(data.astype(np.float64)) != key


def test_cached_stats_round_trip(tmp_path, real_fields):
    fields = real_fields[:20]
    stats = field_cache.cached_reference_stats(fields, str(tmp_path), seed=3, **SMALL)
    (path,) = tmp_path.iterdir()
    assert field_cache.content_key(fields) in path.name
    again = field_cache.cached_reference_stats(fields, str(tmp_path), seed=3, **SMALL)
    assert list(tmp_path.iterdir()) == [path]
    assert again.keys() == stats.keys()
    for name in stats:
        np.testing.assert_array_equal(again[name], stats[name])
        assert again[name].dtype == stats[name].dtype
    fake = real_fields[20:30]
    assert fm.field_metrics(fake, again) == fm.field_metrics(fake, stats)
    field_cache.cached_reference_stats(fields, str(tmp_path), seed=4, **SMALL)  # another recipe
    assert len(list(tmp_path.iterdir())) == 2


def test_pyramid_steps_are_scipys_mirrored_convolutions():
    # the paper's pyr_down and pyr_up: scipy.ndimage.convolve, 5 x 5 binomial, mode="mirror"
    from scipy import ndimage

    kernel = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])[None, None] / 256.0
    images = np.random.default_rng(17).standard_normal((2, 3, 16, 16))
    down = ndimage.convolve(images, kernel, mode="mirror")[:, :, ::2, ::2]
    np.testing.assert_allclose(fm.pyramid_down(images), down, atol=1e-12)
    spread = np.zeros((2, 3, 32, 32))
    spread[:, :, ::2, ::2] = images
    up = ndimage.convolve(spread, kernel * 4, mode="mirror")
    np.testing.assert_allclose(fm.pyramid_up(images), up, atol=1e-12)


def test_the_module_imports_no_paddle():
    import subprocess
    import sys

    code = "import sys, gankit.field_metrics; sys.exit('paddle' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fm.__file__)))
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_memmapped_data_in_small_batches_gives_the_same_stats(tmp_path, real_fields):
    np.save(tmp_path / "real.npy", real_fields[:20].astype(np.float32))
    on_disk = np.load(tmp_path / "real.npy", mmap_mode="r")
    in_memory = real_fields[:20].astype(np.float32)
    from_disk = fm.reference_stats(on_disk, **dict(SMALL, batch_size=7))
    for name, array in fm.reference_stats(in_memory, **SMALL).items():
        if name != "setting_batch_size":  # the batch size changes the memory needed, no more
            np.testing.assert_allclose(from_disk[name], array, rtol=1e-12, atol=1e-12)
    scores = fm.field_metrics(on_disk, from_disk, batch_size=5)
    assert scores == pytest.approx(fm.field_metrics(in_memory, from_disk), rel=1e-9)
