"""A folder of images -> :class:`~vaekit.dataset.Dataset`: one class per subfolder
(optionally), 8-bit images / 255, 16-bit or float grayscale scaled into [0, 1], turned as their
EXIF orientation says; (n, h, w) when every image is grayscale, else (n, 3, h, w)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from vaekit.errors import DataError, user_stacklevel

from .dataset import Dataset, first_line, scale_uint8

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


_DEEP_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})  # beyond 8 bits
# EXIF orientation -> the PIL.Image.Transpose that shows the image as viewers do (the table of
# PIL.ImageOps.exif_transpose, which is not called: it decodes the image even to read the tag).
_TRANSPOSES = {
    2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
    6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90",
}  # fmt: skip


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in _IMAGE_SUFFIXES and not path.name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image_name(p) and p.is_file())


def load_image_folder(folder: Path) -> Dataset:
    """Images, optionally one class per subfolder -> X (n, h, w) or (n, 3, h, w) in [0, 1]."""
    try:
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and p.name[:1] != ".")
        loose = _image_files(folder)
        classes = [(d, files) for d in subfolders if (files := _image_files(d))]
        deeper = _deeper_images(subfolders)
    except OSError as exc:
        raise DataError(f"{folder} could not be listed ({exc.strerror or exc}).") from None
    if deeper:
        warnings.warn(
            f"{len(deeper)} image(s) in folders below the class subfolders of {folder} (such as "
            f"{deeper[0].relative_to(folder).as_posix()}) are not read: vaekit reads the "
            "images in a folder, or in its subfolders (one class each); move them up a level.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if classes and loose:
        raise DataError(
            f"{folder} mixes loose images ({loose[0].name}) with class subfolders "
            f"({classes[0][0].name}/); move the loose images into a subfolder."
        )
    if classes:
        files = [f for _, fs in classes for f in fs]
        y = np.repeat(np.arange(len(classes), dtype=np.int64), [len(fs) for _, fs in classes])
        names = [_text_name(d.name) for d, _ in classes]
    else:
        files, y, names = loose, None, None
    if not files:
        raise DataError(
            f"{folder} holds no images ({', '.join(_IMAGE_SUFFIXES)}), directly or in class "
            "subfolders; pass a folder of images."
        )
    X = _read_images(files, folder)
    relative = [_text_name(f.relative_to(folder).as_posix()) for f in files]
    return Dataset(X, y, folder.name, image_shape=X.shape[1:], classes=names, files=relative)


def _deeper_images(subfolders: list[Path]) -> list[Path]:
    """Images one level below ``subfolders``, which the loader does not read (not followed
    further: a warning needs one example and a count, not a walk of a whole tree)."""
    return [
        image
        for sub in subfolders
        for inner in sorted(p for p in sub.iterdir() if p.is_dir() and p.name[:1] != ".")
        for image in _image_files(inner)
    ]


def _text_name(name: str) -> str:
    """A file name as text that UTF-8 can hold: bytes that are not UTF-8 (a Latin-1 name on
    Linux, which Python keeps as lone surrogates) are shown as ``\\xe9`` escapes, so the
    name can be written to a CSV or Parquet file."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _read_images(files: list[Path], folder: Path) -> np.ndarray:
    """float32 in [0, 1]: (n, h, w) when every image is grayscale, else (n, 3, h, w) RGB."""
    probes = [_probe_image(f, folder) for f in files]  # headers only: sizes and modes
    size = probes[0][0]
    for f, (other, _) in zip(files, probes, strict=True):
        if other != size:
            raise DataError(
                f"Images differ in size: {files[0].relative_to(folder)} is {size[0]}x{size[1]} "
                f"but {f.relative_to(folder)} is {other[0]}x{other[1]}; resize them to one size."
            )
    colour = not all(gray for _, gray in probes)
    width, height = size
    shape = (len(files), 3, height, width) if colour else (len(files), height, width)
    out = np.empty(shape, dtype=np.float32)
    for i, f in enumerate(files):
        pixels = _decode_image(f, folder, colour)
        if pixels.shape[-2:] != (height, width):  # else numpy's broadcasting error escapes
            h, w = pixels.shape[-2:]
            reason = ValueError(
                f"Pillow decodes it as {w}x{h}, not {width}x{height} as its header says"
            )
            raise _bad_image(f, folder, reason)
        out[i] = pixels
    return out


def as_model_channels(X: np.ndarray, expected: tuple[int, ...], name: str) -> np.ndarray:
    """A folder's images in a model's colour mode, which the folder's files may not share.

    Whether a folder reads as grayscale ``(n, h, w)`` or RGB ``(n, 3, h, w)`` depends on
    whether one of its images is in colour, so new images for a model may come in the other
    mode. Gray images for an RGB model are repeated over the three channels, as the loader does
    for the gray images of a mixed folder; for a grayscale model, gray images (equal channels)
    are taken as they are and colour ones converted as Pillow's ``convert("L")`` does, with a
    warning. Other shapes are returned as they are, for the shape check to judge.
    """
    colour_model = len(expected) == 3 and expected[0] == 3
    gray_model = len(expected) == 2 or (len(expected) == 3 and expected[0] == 1)
    if colour_model and X.ndim == 3 and X.shape[1:] == expected[1:]:
        return np.repeat(X[:, None], 3, axis=1)
    if not (gray_model and X.ndim == 4 and X.shape[1] == 3 and X.shape[2:] == expected[-2:]):
        return X
    gray = X[:, 0].copy()
    colour = ~((X[:, 0] == X[:, 1]) & (X[:, 1] == X[:, 2])).all(axis=(1, 2))
    if colour.any():
        # ITU-R 601-2 luma in Pillow's fixed point: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16
        rgb = np.rint(X[colour] * 255.0).astype(np.int64)
        luma = (19595 * rgb[:, 0] + 38470 * rgb[:, 1] + 7471 * rgb[:, 2] + 0x8000) >> 16
        gray[colour] = luma.astype(np.float32) / np.float32(255.0)
        warnings.warn(
            f"Converted {int(colour.sum())} colour image(s) of {name} to grayscale: the model "
            "was trained on grayscale images.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return gray


def _probe_image(path: Path, folder: Path) -> tuple[tuple[int, int], bool]:
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
            if _orientation(img) in (5, 6, 7, 8):  # displayed turned by 90 degrees
                width, height = height, width
            return (width, height), _is_gray(img)
    except Exception as exc:  # decoders raise many types on bad files; report any as bad data
        raise _bad_image(path, folder, exc) from None


def _decode_image(path: Path, folder: Path, colour: bool) -> np.ndarray:
    """One image as float32 in [0, 1]: (h, w), or (3, h, w) channels first (as torch wants)."""
    from PIL import Image

    try:
        # From a file object, not the path: Pillow (13) memory-maps an uncompressed TIFF opened
        # by path with its turned size but its stored pixel layout, scrambling the image.
        with open(path, "rb") as f, Image.open(f) as opened:
            method = _TRANSPOSES.get(_orientation(opened))
            img = opened if method is None else opened.transpose(Image.Transpose[method])
            if img.mode in _DEEP_GRAY_MODES:
                pixels = _deep_gray(np.asarray(img), img.mode, path, folder)
                return np.broadcast_to(pixels, (3, *pixels.shape)) if colour else pixels
            pixels = np.asarray(img.convert("RGB" if colour else "L"))
    except DataError:
        raise
    except Exception as exc:  # as in _probe_image
        raise _bad_image(path, folder, exc) from None
    return scale_uint8(pixels.transpose(2, 0, 1) if colour else pixels)


def _deep_gray(pixels: np.ndarray, mode: str, path: Path, folder: Path) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grayscale image -> float32 in [0, 1].

    Pillow's ``convert("L")`` clips these to 0..255 instead of rescaling them (a 16-bit PNG
    would come out nearly all white), so they are scaled here: integers by the 16-bit range,
    floats taken as they are, which must then already lie in [0, 1].
    """
    values = pixels.astype(np.float32)
    lo, hi = float(values.min()), float(values.max())
    if mode == "F":
        if np.isfinite(values).all() and lo >= 0.0 and hi <= 1.0:
            return values
        bound = "[0, 1]"
    elif lo >= 0 and hi <= 65535:
        return values / np.float32(65535.0)
    else:
        bound = "0..65535"
    raise DataError(
        f"{path.relative_to(folder)} is a {mode!r} image with values in [{lo:.6g}, {hi:.6g}]; "
        f"vaekit reads such images with values in {bound}; rescale it or save it as 8-bit."
    )


def _orientation(img) -> int:
    """An image's EXIF orientation (1..8, 1 when absent), read from its header.

    Phone cameras store a portrait photo as a landscape one plus this tag. Read before any
    pixel is decoded, so the probe and the decoder agree: a PNG's ``getexif()`` would decode
    the image to look for an eXIf chunk after the pixels, which the PNG spec puts before them.
    Damaged EXIF data leaves the image as stored (Pillow warns about it when it decodes). 1 for
    TIFF: Pillow turns those itself (and reports the turned size before decoding).
    """
    if img.format == "TIFF" or (img.format == "PNG" and "exif" not in img.info):
        return 1
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # Pillow raises many types on damaged metadata
        return 1
    return orientation if orientation in _TRANSPOSES else 1


def _is_gray(img) -> bool:
    if img.mode in _GRAY_MODES:
        return True
    if img.mode == "P":  # palette images (GIF) are gray when every entry has r == g == b
        palette = np.asarray(img.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    return False


def _bad_image(path: Path, folder: Path, exc: Exception) -> DataError:
    return DataError(
        f"{path.relative_to(folder)} in {folder} could not be read as an image "
        f"({first_line(exc)}); remove or replace it."
    )
