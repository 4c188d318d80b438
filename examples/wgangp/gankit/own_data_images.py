"""A user's folder of images (PNG, JPEG, ...) decoded with Pillow into one uint8 array in
memory (N x C x R x R: 100 000 RGB images at 64 x 64 take 1.2 GB), and the square resize
shared with array files. Each problem stops in one line that names the file."""

import os
from os import path as osp
from typing import List, Tuple

import numpy as np
from PIL import Image, ImageOps

from .errors import UsageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_TO_RGB = ("P", "RGBX", "CMYK", "YCbCr")  # colour modes Pillow converts to RGB losslessly enough


def square_resize(image: Image.Image, resolution: int) -> Image.Image:
    """Centre-crop to a square, then resize to resolution x resolution.

    Shrinking uses BOX, the area mean: every source pixel counts (no aliasing) and, unlike
    LANCZOS or bicubic, it cannot overshoot the data's range, which is mapped onto the
    generator's [-1, 1]. Enlarging uses BILINEAR (BOX would be blocky; it cannot overshoot
    either)."""
    width, height = image.size
    side = min(width, height)
    if width != height:
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side == resolution:
        return image
    resample = Image.Resampling.BOX if side > resolution else Image.Resampling.BILINEAR
    return image.resize((resolution, resolution), resample)


def resize_planes(block: np.ndarray, resolution: int) -> np.ndarray:
    """float32 N x C x H x W -> N x C x R x R: each plane through square_resize as a
    Pillow "F" (32-bit float) image."""
    out = np.empty(block.shape[:2] + (resolution, resolution), np.float32)
    for n in range(block.shape[0]):
        for c in range(block.shape[1]):
            plane = Image.fromarray(np.ascontiguousarray(block[n, c], np.float32), mode="F")
            out[n, c] = np.asarray(square_resize(plane, resolution))
    return out


def _drop_opaque_alpha(image: Image.Image, file: str) -> Image.Image:
    """LA/RGBA without a transparent pixel (many exporters write an all-opaque alpha) lose
    the alpha channel; with one they are refused: what lies under a transparent pixel is
    arbitrary, and the generator would learn it."""
    if image.getchannel("A").getextrema()[0] < 255:
        raise UsageError(
            f"{file} has transparent pixels ({image.mode}); flatten it onto a background "
            "(e.g. Pillow's Image.alpha_composite) or save it without alpha."
        )
    return image.convert(image.mode[:-1])


def _normalise(image: Image.Image, file: str) -> Image.Image:
    """Grey (1, L, LA) -> L; colour (P, RGB, RGBA, CMYK, ...) -> RGB; others refused."""
    mode = image.mode
    if mode == "PA" or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    elif mode in _TO_RGB:
        image = image.convert("RGB")
    elif mode == "1":
        image = image.convert("L")
    if image.mode in ("LA", "RGBA"):
        image = _drop_opaque_alpha(image, file)
    if image.mode not in ("L", "RGB"):
        raise UsageError(
            f"{file} is a {mode} image; image folders take 8-bit grey or colour images. "
            "For 16-bit or float data save an array file (.npy), which keeps its range."
        )
    return image


def _decode(file: str, resolution: int) -> Tuple[np.ndarray, str, bool]:
    """(C x R x R uint8, the file's own mode, whether it was resized) for one image."""
    try:
        with Image.open(file) as image:
            image.load()
            mode, size = image.mode, image.size
            upright = ImageOps.exif_transpose(image)  # cameras store rotation in EXIF
            pixels = np.asarray(square_resize(_normalise(upright, file), resolution))
    except Exception as e:  # Pillow: UnidentifiedImageError, OSError (truncated), ...
        raise UsageError(
            f"{file} is not a readable image ({type(e).__name__}: {e}); replace or remove it."
        ) from None
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return pixels, mode, size != (resolution, resolution)


def _is_image(name: str) -> bool:
    return osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _entries(folder: str) -> Tuple[List[str], List[str], List[str]]:
    """(image files, sub-folders, ignored names) directly in `folder`, sorted; hidden
    entries (.DS_Store, .ipynb_checkpoints) and other extensions are ignored."""
    images, folders, ignored = [], [], []
    for name in sorted(os.listdir(folder)):
        full = osp.join(folder, name)
        if name.startswith("."):
            ignored.append(name)
        elif osp.isdir(full):
            folders.append(name)
        elif _is_image(name):
            images.append(full)
        else:
            ignored.append(name)
    return images, folders, ignored


def _ignored_note(ignored: List[str]) -> str:
    if not ignored:
        return "no other files"
    return f"{len(ignored)} other entries ignored (e.g. {', '.join(ignored[:3])})"


def _layout(folder: str) -> Tuple[List[str], List[List[str]], List[str]]:
    """(class names, each class's image files, ignored entries): images directly in the
    folder are one class named after it; else each sub-folder is a class, sorted by name."""
    images, folders, ignored = _entries(folder)
    kinds = "/".join(IMAGE_EXTENSIONS)
    if images and folders:
        raise UsageError(
            f"DATA.data_path={folder} has both images ({osp.basename(images[0])}) and "
            f"sub-folders ({folders[0]}/); put every image in a class sub-folder, or remove "
            "the sub-folders."
        )
    if images:
        return [osp.basename(osp.normpath(folder))], [images], ignored
    if not folders:
        raise UsageError(
            f"DATA.data_path={folder} has no images ({kinds}), {_ignored_note(ignored)}; "
            "put the images in it or in one sub-folder per class."
        )
    classes = []
    for name in folders:
        files, inner, skipped = _entries(osp.join(folder, name))
        if not files:
            raise UsageError(
                f"DATA.data_path={folder}: class folder {name}/ has no images ({kinds}); "
                "add images or remove the folder."
            )
        classes.append(files)
        ignored += [f"{name}/{n}" for n in inner + skipped]
    return folders, classes, ignored


def read_folder(folder: str, resolution: int) -> Tuple[np.ndarray, np.ndarray, List[str], str]:
    """(uint8 N x C x R x R, int64 labels, class names, one summary line) for an image
    folder; all images must have the same channel count (grey 1, colour 3)."""
    classes, files, ignored = _layout(folder)
    paths = [p for group in files for p in group]
    labels = np.concatenate([np.full(len(g), i, np.int64) for i, g in enumerate(files)])
    images, first_mode, resized = None, None, 0
    for i, file in enumerate(paths):
        pixels, mode, was_resized = _decode(file, resolution)
        if images is None:
            images = np.empty((len(paths),) + pixels.shape, np.uint8)
            first_mode = mode
        elif pixels.shape[0] != images.shape[1]:
            raise UsageError(
                f"DATA.data_path={folder} mixes grey and colour images: {paths[0]} is "
                f"{first_mode} ({images.shape[1]} channel(s)), {file} is {mode} "
                f"({pixels.shape[0]}); convert them all to one mode."
            )
        images[i] = pixels
        resized += was_resized
    summary = (
        f"{len(paths)} images in {len(classes)} class(es) ({', '.join(classes[:10])}) from "
        f"{folder}: {images.shape[1]} channel(s), {resized} resized to {resolution}x"
        f"{resolution}, {_ignored_note(ignored)}; decoded into memory"
    )
    return images, labels, classes, summary
