"""Metrics that need no pretrained network, for a user's own fields: grey images or physical
fields with any number of channels, arrays N x C x H x W of floats in the data's units.

Three measures, each reported beside its floor (the same measure between two disjoint halves
of the real data, what sampling noise alone gives):

- swd: the sliced Wasserstein distance between 7 x 7 patches of the Laplacian pyramids
  (Karras et al. 2018, "Progressive Growing of GANs", section 5): per level of the pyramid
  (the full resolution halved down to 16 x 16) 128 patches per image at random positions,
  each set normalised per channel by its own mean and std, 4 x 128 random unit directions;
  x 1e3 per level ("swd_64", "swd_32", "swd_16") and their mean ("swd"), as they print it.
  Since each set is normalised by itself, it judges the shape of local structure at each
  scale, not the fields' amplitude: the other two measures cover that.
- value_w1: the Wasserstein-1 distance between the real and generated distributions of the
  values of each channel (every pixel of every image), in the data's units, averaged over
  channels. It is the mean shift a value needs to turn one distribution into the other: a
  generator that is 0.1 K too warm everywhere scores 0.1 K. A binned histogram distance
  would depend on the bins and saturate for disjoint ranges; this needs neither.
- spectrum_error: the radially averaged power spectra (integer |k| bins, k = 1 up to the
  Nyquist k = min(H, W) / 2, power averaged over the modes of a bin, the images and nothing
  else) compared per channel as mean over k of |ln P_fake(k) - ln P_real(k)|, averaged over
  channels. For small errors this is the relative error |P_fake - P_real| / P_real; unlike
  it, a spectrum twice too high and one half too high score the same (ln 2 = 0.69), and the
  decades of a steep spectrum weigh alike. The mean (k = 0) is left to value_w1.

The real side's part (reference_stats) is computed once and cached by the data's content
(field_cache.py). numpy only: no Paddle, no network.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np

FORMAT = 1  # the layout of reference_stats' dict; part of the cache's file names
_BINOMIAL_TAPS = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
_DIRECTION_CHUNK = 32  # directions projected at a time, to bound memory for large sets


def _check_fields(x, min_resolution: int = 16) -> None:
    """Refuse what the metrics cannot read: not N x C x H x W, or too small for the pyramid."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"expected an array N x C x H x W, got shape {getattr(x, 'shape', '?')}")
    n, c, h, w = x.shape
    if n < 2 or c < 1 or min(h, w) < min_resolution:
        raise ValueError(
            f"need at least 2 images of at least {min_resolution} x {min_resolution} pixels,"
            f" got shape {tuple(x.shape)}"
        )


def _batches(x, indices: np.ndarray, batch_size: int):
    """The images x[indices] as float64 arrays, batch_size at a time (memmaps stay on disk)."""
    for start in range(0, len(indices), batch_size):
        yield np.asarray(x[indices[start : start + batch_size]], dtype=np.float64)


# ---- the Laplacian pyramid ----


def _binomial_blur(x: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """The 5 x 5 binomial filter [1, 4, 6, 4, 1]/16 along both image axes (it is separable),
    with mirrored edges (d c b | a b c d | c b a), times gain per axis."""
    taps = _BINOMIAL_TAPS * gain
    h, w = x.shape[-2:]
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(2, 2), (2, 2)], mode="reflect")
    rows = sum(t * padded[..., i : i + h, :] for i, t in enumerate(taps))
    return sum(t * rows[..., :, j : j + w] for j, t in enumerate(taps))


def pyramid_down(x: np.ndarray) -> np.ndarray:
    """Blur, then keep every second row and column: half the resolution (as cv2.pyrDown)."""
    return _binomial_blur(x)[..., ::2, ::2]


def pyramid_up(x: np.ndarray) -> np.ndarray:
    """Twice the resolution: zeros between the pixels, then the blur with 4 x the gain (each
    axis 2 x) so the mean is kept (as cv2.pyrUp)."""
    up = np.zeros(x.shape[:-2] + (2 * x.shape[-2], 2 * x.shape[-1]), dtype=x.dtype)
    up[..., ::2, ::2] = x
    return _binomial_blur(up, gain=2.0)


def pyramid_resolutions(size: int, min_resolution: int = 16) -> List[int]:
    """The pyramid's levels for images of `size` (the smaller side): size, size/2, ... down to
    min_resolution, as the paper's (64 gives [64, 32, 16], 32 gives [32, 16])."""
    resolutions = []
    while size >= min_resolution:
        resolutions.append(size)
        if size % 2:
            break
        size //= 2
    return resolutions


def laplacian_pyramid(x: np.ndarray, levels: int) -> List[np.ndarray]:
    """The Laplacian pyramid of images N x C x H x W, finest level first: each level but the
    last is the detail its half-resolution blur loses; the last is that blur (float64)."""
    x = np.asarray(x, dtype=np.float64)
    if levels > 1 and any(s % 2 ** (levels - 1) for s in x.shape[-2:]):
        raise ValueError(f"{levels} pyramid levels need sides divisible by {2 ** (levels - 1)}")
    pyramid = [x]
    for _ in range(levels - 1):
        coarser = pyramid_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - pyramid_up(coarser)
        pyramid.append(coarser)
    return pyramid


def reconstruct_from_pyramid(pyramid: Sequence[np.ndarray]) -> np.ndarray:
    """The images back from their Laplacian pyramid (exact up to rounding)."""
    images = pyramid[-1]
    for detail in pyramid[-2::-1]:
        images = pyramid_up(images) + detail
    return images


# ---- the sliced Wasserstein distance ----


def patch_centres(count: int, height: int, width: int, size: int, rng) -> np.ndarray:
    """count uniformly random centres (row, column) of size x size patches wholly inside an
    image height x width: count x 2."""
    half = size // 2
    rows = rng.integers(half, height - half, size=count)
    return np.stack([rows, rng.integers(half, width - half, size=count)], axis=1)


def patches_at(images: np.ndarray, centres: np.ndarray, size: int) -> np.ndarray:
    """The square patches size x size, all channels, of images N x C x H x W around centres
    (N*k x 2, k an image, image by image): N*k x C x size x size."""
    offsets = np.arange(-(size // 2), size // 2 + 1)
    rows = centres[:, 0, None] + offsets
    cols = centres[:, 1, None] + offsets
    image = np.repeat(np.arange(len(images)), len(centres) // len(images))[:, None, None]
    patches = images[image, :, rows[:, :, None], cols[:, None, :]]  # N*k x size x size x C
    return patches.transpose(0, 3, 1, 2)


def random_patches(images: np.ndarray, per_image: int, size: int, rng) -> np.ndarray:
    """per_image patches size x size of each image at random positions (patch_centres)."""
    n, _, h, w = images.shape
    return patches_at(images, patch_centres(n * per_image, h, w, size, rng), size)


def normalise_descriptors(patches: np.ndarray) -> np.ndarray:
    """Patches P x C x s x s as descriptors P x (C*s*s), float32, each channel shifted and
    scaled to mean 0 and std 1 over the set (a constant channel is only shifted)."""
    patches = np.asarray(patches, dtype=np.float64)
    mean = patches.mean(axis=(0, 2, 3), keepdims=True)
    std = patches.std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1.0
    return ((patches - mean) / std).reshape(len(patches), -1).astype(np.float32)


def pyramid_patches(
    x, indices: np.ndarray, levels: int, per_image: int, size: int, rng, batch_size: int = 256
) -> List[np.ndarray]:
    """Random patches of each pyramid level of the images x[indices], not yet normalised:
    one array P x C x size x size per level, finest first. The positions are drawn before
    the images are read, so batch_size changes the memory needed, never the patches."""
    n, h, w = len(indices), x.shape[2], x.shape[3]
    count = n * per_image
    centres = [patch_centres(count, h >> level, w >> level, size, rng) for level in range(levels)]
    per_level = [[] for _ in range(levels)]
    for start in range(0, n, batch_size):
        images = np.asarray(x[indices[start : start + batch_size]], dtype=np.float64)
        chosen = slice(start * per_image, (start + len(images)) * per_image)
        for level, band in enumerate(laplacian_pyramid(images, levels)):
            per_level[level].append(patches_at(band, centres[level][chosen], size))
    return [np.concatenate(p) for p in per_level]


def wasserstein_1d_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """W1 between the empirical distributions of each row of a (K x m) and b (K x n), both
    sorted along their last axis: the integral over t in (0, 1) of |quantile_a(t) -
    quantile_b(t)|, exact for any m and n (for m == n, the mean of |a - b|)."""
    m, n = a.shape[-1], b.shape[-1]
    if m == n:
        return np.mean(np.abs(a - b), axis=-1)
    ends = np.union1d(np.arange(1, m + 1) / m, np.arange(1, n + 1) / n)
    widths = np.diff(ends, prepend=0.0)
    middles = ends - widths / 2  # inside an interval where both quantile functions are flat
    ia = np.minimum((middles * m).astype(np.int64), m - 1)
    ib = np.minimum((middles * n).astype(np.int64), n - 1)
    return np.abs(a[..., ia] - b[..., ib]) @ widths


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, rng, directions: int = 128, repeats: int = 4
) -> float:
    """The sliced Wasserstein distance between point sets a (m x D) and b (n x D): W1 of their
    projections on random unit directions, averaged over the directions; `repeats` draws of
    `directions` each (D x directions standard normals, each column scaled to length 1)."""
    results = []
    for _ in range(repeats):
        unit = rng.standard_normal((a.shape[1], directions))
        unit /= np.sqrt(np.sum(unit**2, axis=0, keepdims=True))
        unit = unit.astype(np.result_type(a.dtype, b.dtype))
        distances = []
        for start in range(0, directions, _DIRECTION_CHUNK):
            chunk = unit[:, start : start + _DIRECTION_CHUNK]
            sorted_a, sorted_b = np.sort(chunk.T @ a.T), np.sort(chunk.T @ b.T)
            distances.append(wasserstein_1d_sorted(sorted_a, sorted_b))
        results.append(np.mean(np.concatenate(distances)))
    return float(np.mean(results))


# ---- values and spectra ----


def value_quantiles(x, indices: Optional[np.ndarray] = None, levels: int = 4096) -> np.ndarray:
    """Each channel's empirical quantile function of the values of all pixels of x[indices]
    at t = (i + 1/2) / levels: C x levels, in the data's units (one channel's values are read
    into memory at a time)."""
    indices = np.arange(len(x)) if indices is None else np.sort(indices)
    t = (np.arange(levels) + 0.5) / levels
    channels = range(x.shape[1])
    return np.stack(
        [np.quantile(np.asarray(x[indices, c]).ravel(), t, method="inverted_cdf") for c in channels]
    ).astype(np.float64)


def value_w1(quantiles_fake: np.ndarray, quantiles_real: np.ndarray) -> np.ndarray:
    """W1 per channel between two value distributions given by value_quantiles: the mean over
    the levels of the quantiles' difference (exact when each set's value count divides the
    levels; otherwise within (range_fake + range_real) / levels)."""
    return np.mean(np.abs(quantiles_fake - quantiles_real), axis=1)


def _radial_bins(h: int, w: int):
    """Each Fourier mode's integer |k| (in cycles over the smaller side) and the Nyquist k."""
    side = min(h, w)
    ky = np.fft.fftfreq(h)[:, None] * side
    kx = np.fft.fftfreq(w)[None, :] * side
    return np.rint(np.sqrt(ky**2 + kx**2)).astype(np.int64).ravel(), side // 2


def radial_power_spectrum(x, indices: Optional[np.ndarray] = None, batch_size: int = 256):
    """Per image per channel |FFT|^2 / (H W) per mode (white noise of variance s^2: s^2 at
    every k), averaged over the modes of each integer |k| bin and over the images x[indices]:
    C x (Nyquist + 1), k = 0 .. min(H, W) / 2; modes beyond the Nyquist are left out."""
    indices = np.arange(len(x)) if indices is None else indices
    n, c, h, w = len(indices), x.shape[1], x.shape[2], x.shape[3]
    k, nyquist = _radial_bins(h, w)
    inside = k <= nyquist
    modes_per_bin = np.bincount(k[inside], minlength=nyquist + 1)
    total = np.zeros((c, nyquist + 1))
    for images in _batches(x, indices, batch_size):
        power = np.abs(np.fft.fft2(images)) ** 2 / (h * w)
        power = power.reshape(len(images), c, h * w)[:, :, inside].sum(axis=0)
        total += np.stack([np.bincount(k[inside], weights=p, minlength=nyquist + 1) for p in power])
    return total / (modes_per_bin * n)


def spectrum_log_error(spectrum_fake: np.ndarray, spectrum_real: np.ndarray) -> float:
    """Mean over channels and k = 1 .. Nyquist of |ln P_fake(k) - ln P_real(k)|; powers below
    1e-12 of a channel's real peak count as that floor (a constant channel has none)."""
    floor = 1e-12 * np.max(spectrum_real[:, 1:], axis=1, keepdims=True) + 1e-300
    fake = np.maximum(spectrum_fake[:, 1:], floor)
    real = np.maximum(spectrum_real[:, 1:], floor)
    return float(np.mean(np.abs(np.log(fake) - np.log(real))))


# ---- the real side's statistics, the comparison and the floors ----

# The paper's settings for SWD (their metrics/sliced_wasserstein.py: 7 x 7 patches, 128 per
# image, 4 repeats of 128 directions, levels down to 16 x 16, 16384 images), and this module's
# quantile levels and batch size.
DEFAULT_SETTINGS = {
    "patch_size": 7,
    "patches_per_image": 128,
    "patch_images": 16384,
    "directions": 128,
    "repeats": 4,
    "min_resolution": 16,
    "quantile_levels": 4096,
    "batch_size": 256,
}


def _settings(overrides: dict) -> dict:
    """DEFAULT_SETTINGS with the caller's changes; an unknown name is an error."""
    unknown = set(overrides) - set(DEFAULT_SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(DEFAULT_SETTINGS)}")
    return {**DEFAULT_SETTINGS, **{k: int(v) for k, v in overrides.items()}}


def _one_side(x, indices: np.ndarray, settings: dict, rng) -> Dict[str, np.ndarray]:
    """What the comparison needs of one set of images x[indices]: normalised pyramid patches
    (of at most patch_images of them, chosen at random), value quantiles, mean spectrum."""
    resolutions = pyramid_resolutions(min(x.shape[2:]), settings["min_resolution"])
    indices = np.sort(indices)  # a memmap is read in order
    chosen = indices
    if len(indices) > settings["patch_images"]:
        chosen = np.sort(rng.choice(indices, settings["patch_images"], replace=False))
    patches = pyramid_patches(
        x,
        chosen,
        len(resolutions),
        settings["patches_per_image"],
        settings["patch_size"],
        rng,
        settings["batch_size"],
    )
    side = {f"descriptors_{r}": normalise_descriptors(p) for r, p in zip(resolutions, patches)}
    side["value_quantiles"] = value_quantiles(x, indices, settings["quantile_levels"])
    side["power_spectrum"] = radial_power_spectrum(x, indices, settings["batch_size"])
    return side


def _compare(fake: dict, real: dict, settings: dict, rng) -> Dict[str, float]:
    """The three measures between two sides made by _one_side: swd_<resolution> (x 1e3) for
    each level and their mean swd, value_w1 (mean over channels), spectrum_error."""
    scores = {}
    levels = [k for k in real if k.startswith("descriptors_")]
    for name in sorted(levels, key=lambda level: -_resolution(level)):
        swd = sliced_wasserstein(
            fake[name], real[name], rng, settings["directions"], settings["repeats"]
        )
        scores[f"swd_{_resolution(name)}"] = 1e3 * swd
    scores["swd"] = float(np.mean(list(scores.values())))
    scores["value_w1"] = float(np.mean(value_w1(fake["value_quantiles"], real["value_quantiles"])))
    scores["spectrum_error"] = spectrum_log_error(fake["power_spectrum"], real["power_spectrum"])
    return scores


def _resolution(descriptor_name: str) -> int:
    """descriptors_64 -> 64."""
    return int(descriptor_name.rsplit("_", 1)[1])


def _stream(seed: int, purpose: int):
    """An independent random stream for each use of one seed."""
    return np.random.default_rng([seed, purpose])


def floors(real, seed: int = 0, **settings) -> Dict[str, float]:
    """Each measure between two disjoint random halves of the real data (n//2 images each):
    the score that sampling alone gives. Smaller sets score higher, so a generated set of the
    size of a half compares with it directly; one of the size of all real data, a little
    below it."""
    _check_fields(real)
    settings = _settings(settings)
    order = _stream(seed, 1).permutation(len(real))
    half = len(real) // 2
    first = _one_side(real, order[:half], settings, _stream(seed, 2))
    second = _one_side(real, order[half : 2 * half], settings, _stream(seed, 3))
    return _compare(first, second, settings, _stream(seed, 4))


def reference_stats(real, seed: int = 0, **settings) -> Dict[str, np.ndarray]:
    """All the metrics need of the real data, as numpy arrays (savable to an .npz): the
    normalised patches of each pyramid level (descriptors_<resolution>), value_quantiles
    (C x levels), power_spectrum (C x (Nyquist + 1)), the floors (floor_<measure>), the
    settings (setting_<name>) and the data's shape. The patches take the most room:
    patch_images x patches_per_image x C x 49 x 4 bytes a level (with the paper's 16384
    images, 0.4 GB a level a channel); fewer patch_images, less."""
    _check_fields(real)
    settings = _settings(settings)
    stats = _one_side(real, np.arange(len(real)), settings, _stream(seed, 0))
    stats.update({f"floor_{k}": np.array(v) for k, v in floors(real, seed, **settings).items()})
    stats.update({f"setting_{k}": np.array(v) for k, v in settings.items()})
    stats["shape"] = np.array(real.shape)
    return stats


def _as_many_patches(real: dict, fake: dict, rng) -> dict:
    """`real` with each level's descriptors cut to a random subset of as many as `fake` has."""
    out = dict(real)
    for name, descriptors in real.items():
        if name.startswith("descriptors_") and len(descriptors) > len(fake[name]):
            chosen = np.sort(rng.choice(len(descriptors), len(fake[name]), replace=False))
            out[name] = descriptors[chosen]
    return out


def field_metrics(
    fake, stats: Dict[str, np.ndarray], seed: int = 1, batch_size: Optional[int] = None
) -> Dict[str, float]:
    """The generated fields `fake` (N x C x H x W, the real data's units) against the real
    data's reference_stats: swd_<resolution> and swd (x 1e3), value_w1, spectrum_error, and
    beside each its floor (<measure>_floor). The settings are the stats' own; batch_size
    (images read at a time) only changes the memory needed. Where the real data hold more
    patches of a level than the generated set, SWD compares an equal number of them drawn
    at random, as Karras et al. compare equal sets (and sorting millions of real patches
    for every direction would make each evaluation minutes long on a CPU)."""
    _check_fields(fake)
    if tuple(fake.shape[1:]) != tuple(stats["shape"][1:]):
        raise ValueError(
            f"generated fields {tuple(fake.shape[1:])} differ from the real data's"
            f" {tuple(stats['shape'][1:])} (channels x height x width)"
        )
    settings = {k[len("setting_") :]: int(v) for k, v in stats.items() if k.startswith("setting_")}
    settings["batch_size"] = batch_size or settings["batch_size"]
    side = _one_side(fake, np.arange(len(fake)), settings, _stream(seed, 5))
    scores = _compare(
        side, _as_many_patches(stats, side, _stream(seed, 7)), settings, _stream(seed, 6)
    )
    scores.update({f"{k}_floor": float(stats[f"floor_{k}"]) for k in list(scores)})
    return scores
