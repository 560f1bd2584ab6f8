"""Your own data as a folder: one subfolder per class, named for it, of images (PNG, JPEG, BMP, GIF) or of .txt files.

    photos/cat/001.jpg, photos/dog/002.png, …                  one folder: a test split is carved from it
    photos/train/cat/…, photos/test/cat/… [photos/validation/…]  the splits as given

Without train/ and test/, each class gives `test_split` of its files to the test split (stratified). Which files is
decided by a hash of each file's path relative to the folder, so the split is the same on every run and machine.
Adding, removing or rewriting files makes another data set (its hash is in every stage's fingerprint, state.py, and
keys the prepared cache) and may move a few files between splits: give train/ and test/ folders to pin them.

A file is known by its identity (`file_identity`: size, modification and change times, file number), read at the
cost of a stat, not by its bytes: 0.03 s for 2,000 1600×1200 JPEGs (1.4 GB; AMD EPYC, ext4), where hashing their
bytes takes 1.3 s from the page cache and 2.8 s from disk. Every write sets a file's change time (which, unlike the
modification time, no one can set back) and a file renamed over another has another number, so no rewrite keeps
the old identity; a copied or restored folder (cp -a, rsync), a chmod or a chown counts as a change too: prepared
again, stages run again. Linked split and class folders are followed, as the scanners follow them.

A generator's folder needs no classes (`labeled=False`): every image under it, at any depth, is one example (a
train/ and a test/ folder, if both are there, are its splits), and class subfolders are ignored. A generator's
images (`generative`) are cropped to fill the size, not padded, and none may be smaller than it: a generator learns
what it is shown, black bars and upscaling blur included.

Every file is read once, in one streaming pass on all cores (images by pipelines/data/images.py), into the
prepared-example cache (cache.py): later epochs, runs and stages read that, and no more than a few images are ever
decoded at once. A file that cannot be read is named before any training. Images: their own size when all share
one, else `image_size` (H, W); grayscale when every image is, else RGB; `color_mode` forces either. Both are
decided from the files' headers before any is decoded.
"""

import concurrent.futures
import dataclasses
import hashlib
import os
import time
from typing import Iterator

from pipelines.data import cache, images
from pipelines.errors import PipelineError

TEXT_SUFFIXES = (".txt",)
SPLITS = ("train", "validation", "test")
COLOR_MODES = ("auto", "grayscale", "rgb")
PROGRESS_SECONDS = 10  # a long pass reports how far it is this often
LINKED_DEPTH = 2  # linked folders are read as split (photos/train) and class folders (photos/train/cat), no deeper


@dataclasses.dataclass(frozen=True)
class Folder:
    """What a folder holds: its classes, its files per split with their class index, and their kind."""
    root: str
    classes: tuple[str, ...]                  # () when unlabeled
    files: dict[str, list[tuple[str, int]]]  # split → [(path, class index)], train/test (validation folded in train)
    modality: str                             # "image" or "text"


def is_folder_dataset(dataset: str) -> bool:
    return os.path.isdir(dataset)


def _order(path: str) -> str:
    return hashlib.sha1(path.encode()).hexdigest()


def _is_dir(path: str) -> bool:
    """A folder (or a link to one); a broken link or a link loop is not."""
    try:
        return os.path.isdir(path)
    except OSError:
        return False


def _class_files(folder: str) -> dict[str, list[str]]:
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise PipelineError(f"cannot list {folder} ({e.strerror}): check the folder and its permissions") from None
    classes = [d for d in names if not d.startswith(".") and _is_dir(os.path.join(folder, d))]
    files = {}
    for c in classes:
        try:
            entries = sorted(os.listdir(os.path.join(folder, c)))
        except OSError as e:
            raise PipelineError(f"cannot list {os.path.join(folder, c)} ({e.strerror}): check its permissions"
                                ) from None
        files[c] = [os.path.join(folder, c, f) for f in entries
                    if f.lower().endswith(images.SUFFIXES + TEXT_SUFFIXES) and not f.startswith(".")]
    return files


def _given_splits(root: str) -> list[str]:
    """The split folders given, when they hold class folders (a flat folder whose classes are named train and test
    holds files in them, not folders)."""
    given = [s for s in SPLITS if _is_dir(os.path.join(root, s))]
    if "train" in given and "test" in given and all(_class_files(os.path.join(root, s)) for s in given):
        return given
    return []


def _images_below(folder: str) -> list[str]:
    """Every image file under `folder`, at any depth (links to folders not followed), in a fixed order."""
    found = []
    for parent, dirs, names in os.walk(folder, onerror=_unlisted):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(parent, n) for n in sorted(names)
                  if n.lower().endswith(images.SUFFIXES) and not n.startswith(".")]
    return found


def _unlisted(error: OSError):
    raise PipelineError(f"cannot list {error.filename} ({error.strerror}): check the folder and its permissions")


def _split_by_hash(paths: list[str], root: str, test_split: float) -> tuple[list[str], list[str]]:
    """(train, test): `test_split` of the paths, chosen by the hash of each one's path relative to `root`."""
    ordered = sorted(paths, key=lambda p: _order(os.path.relpath(p, root)))
    count = round(len(ordered) * test_split)
    return ordered[count:], ordered[:count]


def scan_unlabeled(root: str, test_split: float) -> Folder:
    """Every image under `root` as one class-free set, split by the given train/ and test/ folders or by hash."""
    root = os.path.normpath(root)
    given = [s for s in SPLITS if _is_dir(os.path.join(root, s))]
    if "train" in given and "test" in given:
        train = [p for s in given if s != "test" for p in _images_below(os.path.join(root, s))]
        test = _images_below(os.path.join(root, "test"))
    else:
        train, test = _split_by_hash(_images_below(root), root, test_split)
    if not train and not test:
        raise PipelineError(f"{root} holds no images at any depth (supported: {', '.join(images.SUFFIXES)}): give a "
                            "folder of pictures")
    files = {"train": [(p, 0) for p in train], "test": [(p, 0) for p in test]}
    for split, examples in files.items():
        if not examples:
            raise PipelineError(f"{root} leaves no {split} images: give it more images, or a {split}/ folder")
        examples.sort(key=lambda e: _order(os.path.relpath(e[0], root)))
    return Folder(root, (), files, "image")


def scan(root: str, test_split: float) -> Folder:
    """The folder's classes and split files, checked for the layout's mistakes (each one line naming the fix)."""
    root = os.path.normpath(root)
    given = _given_splits(root)
    if given:
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
            by_class[c], test[c] = _split_by_hash(by_class[c], root, test_split)
    if not classes:
        raise PipelineError(f"{root} has no class subfolders: put each class's images or .txt files in a subfolder "
                            "named for the class (photos/cat/…, photos/dog/…)")
    if len(classes) < 2:
        raise PipelineError(f"{root} has one class ({classes[0]}): a classifier needs at least two class subfolders")
    every = [p for c in classes for p in by_class[c] + test[c]]
    empty = [c for c in classes if not by_class[c] and not test[c]]
    if empty:
        raise PipelineError(f"{root}: the class folder {empty[0]} has no images or .txt files (supported: "
                            f"{', '.join(images.SUFFIXES + TEXT_SUFFIXES)})")
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


def file_identity(stat: os.stat_result) -> str:
    """What tells a version of a file from another without reading it: its size, modification and change times and
    file number."""
    # The change time is set by every write and by os.utime itself, and cannot be set back; a rename over the file
    # gives it another number. Size and modification time alone miss a rewrite whose time was restored. (Kernels
    # before 6.13 stamp times by the clock tick, a few ms: a rewrite in the tick of the last write shares its time.)
    return f"{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0{stat.st_ino}"


def identity_of(path: str) -> str:
    """A file's identity (file_identity), or, for one that cannot be looked at (a broken link), its error: reading
    it later says what is wrong."""
    try:
        return file_identity(os.stat(path))
    except OSError as e:
        return f"unreadable {e.errno}"


def content_hash(root: str) -> str:
    """A hash of the folder's files by path and identity (`file_identity`): a changed data set is another data set. A
    file that cannot be looked at (a broken link) counts by its name; reading it later says what is wrong."""
    digest = hashlib.sha256()
    for path in _walked(root):
        digest.update(f"{os.path.relpath(path, root)}\0{identity_of(path)}\n".encode())
    return digest.hexdigest()


def _walked(root: str) -> Iterator[str]:
    """Every file under `root` in a fixed order, at any depth; a linked folder is entered where the scanners follow
    one (a split or class folder: LINKED_DEPTH) and below that is one name, so a link loop ends."""
    for folder, dirs, files in os.walk(root, followlinks=True):
        depth = 0 if folder == root else os.path.relpath(folder, root).count(os.sep) + 1
        dirs.sort()
        for name in [d for d in dirs if depth >= LINKED_DEPTH and os.path.islink(os.path.join(folder, d))]:
            dirs.remove(name)
            yield os.path.join(folder, name)
        yield from (os.path.join(folder, name) for name in sorted(files))


class _Progress:
    """A line every PROGRESS_SECONDS while a long pass runs: how far, and how fast."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done = what, total, 0
        self.start = self.last = time.perf_counter()

    def step(self, count: int = 1) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            print(f"  {self.what}: {self.done:,} of {self.total:,} files, {self.done / (now - self.start):,.0f} "
                  "files/s", flush=True)

    def end(self) -> None:
        seconds = time.perf_counter() - self.start
        if seconds >= PROGRESS_SECONDS:
            print(f"  {self.what}: {self.total:,} files in {seconds:.0f} s, {self.total / seconds:,.0f} files/s",
                  flush=True)


def threads() -> int:
    return max(2, 2 * (os.cpu_count() or 1))  # Pillow releases the GIL while it decodes and resizes


def _bad_files(root: str, errors: list[str]) -> PipelineError:
    more = f" (and {len(errors) - 1} other files)" if len(errors) > 1 else ""
    return PipelineError(f"{sorted(errors)[0]}{more}: remove or replace it, or move it out of {root}")


def _image_settings(folder: Folder, image_size, color_mode: str, generative: bool) -> tuple[tuple[int, int], bool]:
    """The size and colour every image is brought to, from the headers alone (all read at once); for a generator,
    a size none of them is smaller than."""
    paths = [p for examples in folder.files.values() for p, _ in examples]
    progress, headers, errors = _Progress("reading image headers", len(paths)), [], []
    with concurrent.futures.ThreadPoolExecutor(threads()) as pool:
        for path, result in zip(paths, pool.map(_header_or_error, paths)):
            progress.step()
            (errors if isinstance(result, str) else headers).append(result)
    if errors:
        raise _bad_files(folder.root, errors)
    progress.end()
    gray = all(h.gray for h in headers) if color_mode == "auto" else color_mode == "grayscale"
    sizes = {(h.height, h.width) for h in headers}
    if image_size is None and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:3])
        raise PipelineError(f"the images in {folder.root} have {len(sizes)} sizes ({shown}, …): give --image_size=H,W "
                            "(each is resized with its aspect kept, padded with black)")
    size = tuple(image_size) if image_size else sizes.pop()
    small = [(path, h) for path, h in zip(paths, headers) if h.height < size[0] or h.width < size[1]] \
        if generative else []
    if small:
        path, h = small[0]
        raise PipelineError(f"{len(small)} of the {len(paths)} images in {folder.root} are smaller than --image_size="
                            f"{size[0]},{size[1]} ({path} is {h.height}x{h.width}): a generator would learn their "
                            "upscaling blur; give a smaller --image_size, or remove them")
    return size, gray


def _header_or_error(path: str):
    try:
        return images.header(path)
    except images.ImageError as e:
        return str(e)


def _decoded(paths: list[tuple[str, int]], size, gray: bool, crop: bool, errors: list[str],
             progress: _Progress) -> Iterator[dict]:
    """Each file's pixels and label in order, decoded a few at a time on every core; a file that fails is noted in
    `errors` and left out (the caller fails the pass once it is over, naming them)."""
    def decode(path):
        try:
            return images.pixels(path, size, gray, crop)
        except images.ImageError as e:
            return str(e)
    with concurrent.futures.ThreadPoolExecutor(threads()) as pool:
        window = 4 * threads()
        for begin in range(0, len(paths), window):  # a bounded window: never the whole folder in memory
            chunk = paths[begin:begin + window]
            for (path, label), result in zip(chunk, pool.map(decode, [p for p, _ in chunk])):
                progress.step()
                if isinstance(result, str):
                    errors.append(result)
                else:
                    yield {"image": result, "label": label}


def _write_images(folder: Folder, image_size, color_mode: str, generative: bool, start) -> dict:
    size, gray = _image_settings(folder, image_size, color_mode, generative)
    writer = start({"image": cache.Feature("uint8", (*size, 1 if gray else 3)), "label": cache.Feature("int64")})
    errors: list[str] = []
    progress = _Progress("decoding images into the cache", sum(len(e) for e in folder.files.values()))
    for split, examples in folder.files.items():
        for example in _decoded(examples, size, gray, generative, errors, progress):
            writer.add(split, example)
    progress.end()
    if errors:
        raise _bad_files(folder.root, errors)
    return {"classes": list(folder.classes), "image_size": list(size), "color_mode": "grayscale" if gray else "rgb"}


def _write_texts(folder: Folder, start) -> dict:
    if not any(os.path.getsize(p) for examples in folder.files.values() for p, _ in examples if os.path.isfile(p)):
        raise PipelineError(f"every .txt file in {folder.root} is empty: there is no text to learn from")
    writer = start({"text": cache.Feature("string"), "label": cache.Feature("int64")})
    for split, examples in folder.files.items():
        for path, label in examples:
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except UnicodeDecodeError as e:
                raise PipelineError(f"cannot read text file {path} (not UTF-8 at byte {e.start}): save it as UTF-8"
                                    ) from None
            except OSError as e:
                raise PipelineError(f"cannot read text file {path} ({e.strerror}): remove or replace it") from None
            writer.add(split, {"text": text, "label": label})
    return {"classes": list(folder.classes)}


def prepare(root: str, *, test_split: float, image_size, color_mode: str, cache_dir: str, labeled: bool = True,
            generative: bool = False):
    """The folder's splits in the prepared cache (decoded there first if they are not), its classes, its kind and
    what reading it decided (image size and colour). `labeled=False`: every image, classes ignored; `generative`:
    images a generator learns to draw (cropped to the size, none smaller)."""
    folder = scan(root, test_split) if labeled else scan_unlabeled(root, test_split)
    key = hashlib.sha256(repr((content_hash(root), os.path.abspath(root), test_split,
                               tuple(image_size) if image_size else None, color_mode, folder.modality,
                               labeled, generative, images.READER_VERSION)).encode()).hexdigest()[:24]

    def write(start):
        info = (_write_texts(folder, start) if folder.modality == "text"
                else _write_images(folder, image_size, color_mode, generative, start))
        return ("train", "test"), info
    splits, info = cache.prepared(cache_dir, f"folder-{key}", write, f"the folder {root}")
    return folder, splits, info
