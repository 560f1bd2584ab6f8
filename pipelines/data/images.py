"""The one place an image file is opened: a folder's training images, and the images a finished model is asked
about (dlpipe-predict) read the same way, so a photo reaches the model as its training photos did.

Pillow reads PNG, JPEG, BMP and GIF (the first frame). Every failure is an ImageError naming the file: missing,
a broken link, not an image, truncated, or larger than Pillow's decompression-bomb limit. The pixels are those a
viewer shows: the EXIF orientation applied (a phone stores a portrait photo sideways with a tag), 16-bit values
scaled to 8 bits (not clipped), CMYK and palettes converted. Resizing keeps the aspect and pads with black
(tf.image.resize_with_pad's rule) or, for a generator's training images, fills the size and crops the overhang
(black bars would be learned as part of every picture), and a JPEG is decoded straight at the smallest scale of
its DCT that still covers the target (Pillow's draft mode): a 6-megapixel photo for a 96×96 model decodes at 1/8
of its size.
Grayscale is ITU-R 601-2 luma, L = 0.299 R + 0.587 G + 0.114 B (Pillow's convert("L")).
"""

import dataclasses
import math

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ORIENTATION = 0x0112          # the EXIF tag; values 5 to 8 turn the image a quarter
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
READER_VERSION = 2            # bump when the rule above changes: it is part of every prepared cache's key


class ImageError(ValueError):
    """A file that cannot be read as an image; the message names the file and what is wrong with it."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"cannot read image {path} ({problem})")
        self.path, self.problem = path, problem


@dataclasses.dataclass(frozen=True)
class Header:
    height: int   # as shown: after the EXIF orientation
    width: int
    gray: bool


def _open(path: str) -> Image.Image:
    try:
        return Image.open(path)
    except Image.DecompressionBombError as e:
        raise ImageError(path, f"too large to decode safely: {e}") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image Pillow can read") from None
    except OSError as e:  # missing, a broken link, a link loop, unreadable
        raise ImageError(path, e.strerror or str(e)) from None


def _turned(image: Image.Image) -> bool:
    try:
        return image.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8)
    except Exception:  # a damaged EXIF block: shown as stored
        return False


def _is_gray(image: Image.Image) -> bool:
    """By the file's own mode; a palette image is gray when its palette is."""
    if image.mode == "P":
        palette = image.getpalette() or []
        return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))
    return image.mode in GRAY_MODES


def header(path: str) -> Header:
    """Size (as shown) and colour, from the file's header alone."""
    with _open(path) as image:
        width, height = image.size
        if _turned(image):
            width, height = height, width
        return Header(height, width, _is_gray(image))


def _fit(image: Image.Image, size: tuple[int, int], crop: bool) -> Image.Image:
    """Resized to fit inside size (H, W) with its aspect kept, centred on black; with `crop`, to fill it, its
    overhang cut off evenly on both sides."""
    height, width = size
    scale = (max if crop else min)(height / image.height, width / image.width)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.Resampling.BILINEAR)
    if crop:
        left, top = (resized.width - width) // 2, (resized.height - height) // 2
        return resized.crop((left, top, left + width, top + height))
    canvas = Image.new(image.mode, (width, height))
    canvas.paste(resized, ((width - resized.width) // 2, (height - resized.height) // 2))
    return canvas


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit grayscale as 8-bit, scaled (65535 → 255), where Pillow's convert would clip at 255."""
    if image.mode not in SIXTEEN_BIT_MODES:
        return image
    values = np.asarray(image, np.float64)
    return Image.fromarray(np.clip(np.round(values * (255 / 65535)), 0, 255).astype(np.uint8), "L")


def pixels(path: str, size: tuple[int, int] | None, grayscale: bool, crop: bool = False) -> np.ndarray:
    """The image as uint8 [H, W, 1 or 3], at `size` (H, W; None: its own; `crop`: filled, not padded), or
    ImageError."""
    with _open(path) as image:
        try:
            if image.format == "JPEG" and size is not None:
                shown_w, shown_h = image.size[::-1] if _turned(image) else image.size
                scale = (max if crop else min)(size[0] / shown_h, size[1] / shown_w)
                wanted = (math.ceil(shown_w * scale), math.ceil(shown_h * scale))
                image.draft("L" if grayscale else "RGB", wanted[::-1] if _turned(image) else wanted)
            image.load()
            shown = ImageOps.exif_transpose(image) if _turned(image) else image
            converted = _eight_bit(shown).convert("L" if grayscale else "RGB")
        except Image.DecompressionBombError as e:
            raise ImageError(path, f"too large to decode safely: {e}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated or corrupt data
            raise ImageError(path, str(e)) from None
    if size is not None and (converted.height, converted.width) != tuple(size):
        converted = _fit(converted, size, crop)
    array = np.asarray(converted, dtype=np.uint8)
    return array[..., np.newaxis] if array.ndim == 2 else array
