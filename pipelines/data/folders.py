"""Your own data as a folder: one subfolder per class, named for it, of images (PNG, JPEG, BMP, GIF) or of .txt files.

    photos/cat/001.jpg, photos/dog/002.png, …                  one folder: a test split is carved from it
    photos/train/cat/…, photos/test/cat/… [photos/validation/…]  the splits as given

Without train/ and test/, each class gives `test_split` of its files to the test split (stratified). Which files is
decided by a hash of each file's path relative to the folder, so the split is the same on every run and machine.
Adding or removing files makes another data set (its hash is in every stage's fingerprint, runner.py) and may move
a few files between splits: give train/ and test/ folders to pin them. Every file is read and checked here, once:
a file that cannot be read is named before any training, and the decoded examples are what the pipeline caches.

Images: their own size when all share one, else `image_size` (H, W) — resized with the aspect kept, padded with
black (tf.image.resize_with_pad's rule, done here with Pillow). Colour: grayscale when every image is, else RGB;
`color_mode` forces either (grayscale by Pillow's ITU-R 601-2 luma: L = 0.299 R + 0.587 G + 0.114 B).
"""

import dataclasses
import hashlib
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipelines.errors import PipelineError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TEXT_SUFFIXES = (".txt",)
SPLITS = ("train", "validation", "test")
COLOR_MODES = ("auto", "grayscale", "rgb")


@dataclasses.dataclass(frozen=True)
class Folder:
    """What a folder holds: its classes, its files per split with their class index, and their kind."""
    root: str
    classes: tuple[str, ...]
    files: dict[str, list[tuple[str, int]]]  # split → [(path, class index)], train/test (validation folded in train)
    modality: str                             # "image" or "text"


def is_folder_dataset(dataset: str) -> bool:
    return os.path.isdir(dataset)


def _order(path: str) -> str:
    return hashlib.sha1(path.encode()).hexdigest()


def _class_files(folder: str) -> dict[str, list[str]]:
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))
    return {c: sorted(os.path.join(folder, c, f) for f in os.listdir(os.path.join(folder, c))
                      if f.lower().endswith(IMAGE_SUFFIXES + TEXT_SUFFIXES)) for c in classes}


def scan(root: str, test_split: float) -> Folder:
    """The folder's classes and split files, checked for the layout's mistakes (each one line naming the fix)."""
    root = os.path.normpath(root)
    given = [s for s in SPLITS if os.path.isdir(os.path.join(root, s))]
    if "train" in given and "test" in given:
        per_split = {s: _class_files(os.path.join(root, s)) for s in given}
        classes = sorted(per_split["train"])
        for split, files in per_split.items():
            if sorted(files) != classes:
                raise PipelineError(f"{root}/{split}/ has the classes {', '.join(sorted(files)) or 'none'}, and train/ "
                                    f"has {', '.join(classes) or 'none'}: give every split the same class subfolders")
        by_class = {c: [p for s in given if s != "test" for p in per_split[s][c]] for c in classes}
        test = {c: per_split["test"][c] for c in classes}
    else:
        by_class = _class_files(root)
        classes = sorted(by_class)
        test = {}
        for c in classes:  # stratified: each class gives the same share, chosen by the hash of each file's path
            ordered = sorted(by_class[c], key=lambda p: _order(os.path.relpath(p, root)))
            count = round(len(ordered) * test_split)
            test[c], by_class[c] = ordered[:count], ordered[count:]
    if not classes:
        raise PipelineError(f"{root} has no class subfolders: put each class's images or .txt files in a subfolder "
                            "named for the class (photos/cat/…, photos/dog/…)")
    if len(classes) < 2:
        raise PipelineError(f"{root} has one class ({classes[0]}): a classifier needs at least two class subfolders")
    every = [p for c in classes for p in by_class[c] + test[c]]
    empty = [c for c in classes if not by_class[c] and not test[c]]
    if empty:
        raise PipelineError(f"{root}: the class folder {empty[0]} has no images or .txt files (supported: "
                            f"{', '.join(IMAGE_SUFFIXES + TEXT_SUFFIXES)})")
    kinds = {"text" if p.lower().endswith(TEXT_SUFFIXES) else "image" for p in every}
    if len(kinds) > 1:
        raise PipelineError(f"{root} holds both images and .txt files: keep one kind of example in a data set")
    files = {"train": [(p, i) for i, c in enumerate(classes) for p in by_class[c]],
             "test": [(p, i) for i, c in enumerate(classes) for p in test[c]]}
    for split, examples in files.items():
        if not examples:
            raise PipelineError(f"{root} leaves no {split} examples: give each class more files, or a {split}/ folder")
        examples.sort(key=lambda e: _order(os.path.relpath(e[0], root)))  # classes interleaved, as TFDS files are
    return Folder(root, tuple(classes), files, kinds.pop())


def identity(root: str) -> str:
    """A hash of the folder's files, their sizes and modification times: a changed data set is another data set."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            stat = os.stat(os.path.join(folder, name))
            digest.update(f"{os.path.relpath(os.path.join(folder, name), root)}\0{stat.st_size}\0"
                          f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _open_image(path: str) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()  # decodes now: a truncated or corrupt file fails here, named, not in the middle of training
        return image
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise PipelineError(f"cannot read image {path} ({e}): remove or replace it") from None


def _is_gray(image: Image.Image) -> bool:
    """By the file's own mode; a palette image is gray when its palette is."""
    if image.mode == "P":
        r, g, b = image.convert("RGB").split()
        return r.tobytes() == g.tobytes() == b.tobytes()
    return image.mode in ("1", "L", "LA", "I", "I;16", "F")


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resized to fit inside size (H, W) with its aspect kept, centred on black."""
    height, width = size
    scale = min(height / image.height, width / image.width)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.Resampling.BILINEAR)
    canvas = Image.new(image.mode, (width, height))
    canvas.paste(resized, ((width - resized.width) // 2, (height - resized.height) // 2))
    return canvas


def read_images(folder: Folder, image_size: tuple[int, int] | None, color_mode: str) -> dict[str, dict]:
    """Every split's images as uint8 [N, H, W, C] and labels int64 [N], decoded once."""
    images = {split: [_open_image(p) for p, _ in examples] for split, examples in folder.files.items()}
    every = [image for split in images.values() for image in split]
    if color_mode == "auto":
        color_mode = "grayscale" if all(_is_gray(i) for i in every) else "rgb"
    sizes = {(i.height, i.width) for i in every}
    if image_size is None and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:3])
        raise PipelineError(f"the images in {folder.root} have {len(sizes)} sizes ({shown}, …): give --image_size=H,W "
                            "(each is resized with its aspect kept, padded with black)")
    size = tuple(image_size) if image_size else sizes.pop()
    mode = "L" if color_mode == "grayscale" else "RGB"

    def pixels(image):
        image = image.convert(mode)
        if (image.height, image.width) != size:
            image = _fit(image, size)
        array = np.asarray(image, dtype=np.uint8)
        return array[..., np.newaxis] if array.ndim == 2 else array
    return {split: {"image": np.stack([pixels(i) for i in split_images]),
                    "label": np.array([label for _, label in folder.files[split]], dtype=np.int64)}
            for split, split_images in images.items()}


def read_texts(folder: Folder) -> dict[str, dict]:
    """Every split's texts as strings and labels int64 [N]."""
    def text(path):
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except UnicodeDecodeError as e:
            raise PipelineError(f"cannot read text file {path} (not UTF-8 at byte {e.start}): save it as UTF-8"
                                ) from None
    return {split: {"text": np.array([text(p) for p, _ in examples], dtype=object),
                    "label": np.array([label for _, label in examples], dtype=np.int64)}
            for split, examples in folder.files.items()}
