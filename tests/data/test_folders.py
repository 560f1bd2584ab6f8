"""A folder of one's own: class subfolders of images or .txt files, checked and read once."""

import os
import time

import numpy as np
import pytest
from PIL import Image

from pipelines.data import folders, sources
from pipelines.errors import PipelineError


def write_images(root, per_class: dict[str, int], size=(28, 28), mode="L", start=0):
    for label, (name, count) in enumerate(per_class.items()):
        os.makedirs(root / name, exist_ok=True)
        for i in range(start, start + count):
            value = 100 + 40 * label + i % 7
            Image.new(mode, size[::-1], value if mode == "L" else (value, 255 - value, 0)).save(
                root / name / f"{i:04d}.png")


def load(root, **kwargs):
    options = dict(test_split=0.2, image_size=None, color_mode="auto", cache_dir=str(root) + "-cache")
    options.update(kwargs)
    return sources.load_folder(str(root), **options)


def arrays(split):
    return next(iter(split.read().batch(10_000).as_numpy_iterator()))


def test_class_folders_become_sorted_labels_and_a_stratified_test_split(tmp_path):
    write_images(tmp_path, {"shirt": 10, "bag": 20, "coat": 5})
    data = load(tmp_path)
    assert data.label_names == ("bag", "coat", "shirt") and data.modality == "image"
    train, test = arrays(data.train), arrays(data.test)
    assert np.bincount(test["label"]).tolist() == [4, 1, 2]  # a fifth of each class
    assert np.bincount(train["label"]).tolist() == [16, 4, 8]
    assert train["image"].shape == (28, 28, 28, 1) and train["image"].dtype == np.uint8
    assert list(train["label"]) != sorted(train["label"])  # classes interleaved: validation is carved from the end


def test_the_split_is_decided_by_file_paths_alone_and_a_changed_folder_is_another_data_set(tmp_path):
    write_images(tmp_path, {"a": 20, "b": 20})
    first, again = folders.scan(str(tmp_path), 0.2), folders.scan(str(tmp_path) + "/", 0.2)
    assert first.files == again.files
    before = folders.content_hash(str(tmp_path))
    write_images(tmp_path, {"a": 1}, start=100)
    assert folders.content_hash(str(tmp_path)) != before  # every stage's fingerprint holds it: all run again


def test_train_and_test_folders_are_the_splits_and_validation_joins_train(tmp_path):
    write_images(tmp_path / "train", {"a": 6, "b": 6})
    write_images(tmp_path / "validation", {"a": 2, "b": 2}, start=50)
    write_images(tmp_path / "test", {"a": 3, "b": 3}, start=90)
    folder = folders.scan(str(tmp_path), 0.2)
    assert len(folder.files["train"]) == 16 and len(folder.files["test"]) == 6
    assert all("/test/" in p for p, _ in folder.files["test"])


def test_images_of_several_sizes_need_image_size_and_keep_their_aspect(tmp_path):
    write_images(tmp_path, {"a": 5}, size=(20, 40))
    write_images(tmp_path, {"b": 5}, size=(30, 30))
    with pytest.raises(PipelineError, match=r"have 2 sizes \(20x40, 30x30, …\): give --image_size=H,W"):
        load(tmp_path)
    image = arrays(load(tmp_path, image_size=(32, 32)).train)["image"]
    assert image.shape[1:] == (32, 32, 1)
    wide = [i for i, x in enumerate(image) if x[0].max() == 0]  # the 20x40 images: padded above and below
    assert wide and image[wide[0], 16].max() > 0


def test_grayscale_and_colour_are_detected_and_can_be_forced(tmp_path):
    write_images(tmp_path / "gray", {"a": 5, "b": 5})
    write_images(tmp_path / "rgb", {"a": 5, "b": 5}, mode="RGB")
    assert arrays(load(tmp_path / "gray").train)["image"].shape[-1] == 1
    assert arrays(load(tmp_path / "rgb").train)["image"].shape[-1] == 3
    assert arrays(load(tmp_path / "gray", color_mode="rgb").train)["image"].shape[-1] == 3
    assert arrays(load(tmp_path / "rgb", color_mode="grayscale").train)["image"].shape[-1] == 1


def test_text_folders_give_strings(tmp_path):
    for label, words in (("neg", "dull slow"), ("pos", "great fun")):
        os.makedirs(tmp_path / label)
        for i in range(10):
            (tmp_path / label / f"{i}.txt").write_text(f"{words} {i}")
    data = load(tmp_path)
    assert data.modality == "text" and data.label_names == ("neg", "pos")
    test = arrays(data.test)
    assert len(test["text"]) == 4 and all(isinstance(t, bytes) for t in test["text"])


@pytest.mark.parametrize("make,problem", [
    (lambda root: None, "has no class subfolders"),
    (lambda root: write_images(root, {"only": 5}), r"has one class \(only\)"),
    (lambda root: (write_images(root, {"a": 5}), os.makedirs(root / "b")), "the class folder b has no images"),
    (lambda root: (write_images(root, {"a": 5, "b": 5}), (root / "b" / "x.txt").write_text("hi")),
     "holds both images and .txt files"),
    (lambda root: (write_images(root, {"a": 5, "b": 5}), (root / "b" / "9.png").write_bytes(b"\x89PNG broken")),
     r"cannot read image .*/b/9.png .*remove or replace it"),
    (lambda root: (write_images(root / "train", {"a": 5, "b": 5}), write_images(root / "test", {"a": 2, "c": 2})),
     "test/ has the classes a, c, and train/ has a, b"),
])
def test_bad_folders_are_one_line_naming_the_file_or_folder(tmp_path, make, problem):
    make(tmp_path)
    with pytest.raises(PipelineError, match=problem):
        load(tmp_path)


def test_a_text_file_that_is_not_utf8_is_named(tmp_path):
    for label in ("a", "b"):
        os.makedirs(tmp_path / label)
        for i in range(5):
            (tmp_path / label / f"{i}.txt").write_text("fine")
    (tmp_path / "b" / "4.txt").write_bytes(b"caf\xe9")
    with pytest.raises(PipelineError, match=r"cannot read text file .*/b/4.txt \(not UTF-8 at byte 3\)"):
        load(tmp_path)


def test_the_prepared_cache_is_read_by_a_second_run_and_made_again_when_a_file_changes(tmp_path, monkeypatch):
    from pipelines.data import images
    write_images(tmp_path / "photos", {"a": 6, "b": 6})
    decoded = []
    real = images.pixels
    monkeypatch.setattr(images, "pixels", lambda *args: decoded.append(args[0]) or real(*args))
    first = arrays(load(tmp_path / "photos").train)
    assert len(decoded) == 12
    second = arrays(load(tmp_path / "photos").train)
    assert len(decoded) == 12 and (first["image"] == second["image"]).all()  # read from the cache
    write_images(tmp_path / "photos", {"a": 1}, start=50)
    changed = load(tmp_path / "photos")
    assert changed.train.count + changed.test.count == 13
    assert len(decoded) == 25  # another folder: prepared again


def rewrite_keeping_size_and_time(path, new_bytes: bytes) -> None:
    """`path` given other bytes of the same count, its modification time set back (what `touch -r` or a careful
    tool does): only its change time, which no one can set back, still says it was written."""
    before = os.stat(path)
    assert len(new_bytes) == before.st_size
    time.sleep(0.02)  # past the clock tick of its first write: kernels before 6.13 stamp change times by the tick
    with open(path, "wb") as f:
        f.write(new_bytes)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


def test_a_picture_rewritten_with_its_size_and_time_kept_is_another_data_set(tmp_path):
    write_images(tmp_path, {"a": 3, "b": 3})
    before = folders.content_hash(str(tmp_path))
    rewrite_keeping_size_and_time(tmp_path / "a" / "0000.png", (tmp_path / "a" / "0001.png").read_bytes())
    assert folders.content_hash(str(tmp_path)) != before


def test_a_picture_rewritten_with_its_size_and_time_kept_is_decoded_again_not_served_from_the_cache(tmp_path):
    write_images(tmp_path / "photos", {"a": 5, "b": 5})  # class a's pictures are all 100, 101, …, 104

    def values(data):
        return {int(image.max()) for split in (data.train, data.test) for image in arrays(split)["image"]}
    assert 100 in values(load(tmp_path / "photos"))
    rewrite_keeping_size_and_time(tmp_path / "photos" / "a" / "0000.png",
                                  (tmp_path / "photos" / "a" / "0001.png").read_bytes())  # 100 becomes 101
    assert 100 not in values(load(tmp_path / "photos"))


def test_files_in_linked_class_folders_count_and_a_link_loop_ends(tmp_path):
    write_images(tmp_path / "elsewhere", {"b": 3})
    write_images(tmp_path / "photos", {"a": 3})
    os.symlink(tmp_path / "elsewhere" / "b", tmp_path / "photos" / "b")
    os.symlink(tmp_path / "photos", tmp_path / "photos" / "a" / "loop")  # a folder that holds itself
    before = folders.content_hash(str(tmp_path / "photos"))
    rewrite_keeping_size_and_time(tmp_path / "elsewhere" / "b" / "0000.png",
                                  (tmp_path / "elsewhere" / "b" / "0001.png").read_bytes())
    assert folders.content_hash(str(tmp_path / "photos")) != before
    assert load(tmp_path / "photos").label_names == ("a", "b")


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(tmp_path):
    from pipelines.data import images
    upright = np.zeros((40, 20, 3), np.uint8)
    upright[:10] = 255  # white at the top of a portrait photo
    stored = Image.fromarray(np.rot90(upright, 1))  # the camera stores it sideways (20 × 40) …
    exif = Image.Exif()
    exif[images.ORIENTATION] = 6  # … and says: turn it 90° clockwise to show it
    stored.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    assert images.header(str(tmp_path / "photo.jpg")) == images.Header(40, 20, False)
    shown = images.pixels(str(tmp_path / "photo.jpg"), None, grayscale=True)
    assert shown.shape == (40, 20, 1) and shown[:8].mean() > 200 and shown[12:].mean() < 50


def test_16_bit_pngs_are_scaled_to_8_bits_not_clipped(tmp_path):
    from pipelines.data import images
    values = np.array([[0, 257 * 50, 257 * 200, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert images.pixels(str(tmp_path / "deep.png"), None, grayscale=True)[..., 0].tolist() == [[0, 50, 200, 255]]


def test_cmyk_and_palette_images_read_as_their_colours(tmp_path):
    from pipelines.data import images
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "red.jpg")  # no cyan, full magenta and yellow
    red = images.pixels(str(tmp_path / "red.jpg"), None, grayscale=False)
    assert red[..., 0].mean() > 200 and red[..., 1:].mean() < 60
    gray = Image.new("P", (4, 4))
    gray.putpalette([v for i in range(256) for v in (i, i, i)])
    gray.save(tmp_path / "gray.png")
    assert images.header(str(tmp_path / "gray.png")).gray


@pytest.mark.parametrize("make,problem", [
    (lambda root: os.symlink(root / "nowhere.png", root / "b" / "9.png"), r"b/9.png \(No such file or directory\)"),
    (lambda root: os.symlink(root / "b" / "9.png", root / "b" / "9.png"), r"b/9.png \(Too many levels of symbolic"),
    (lambda root: os.symlink(root / "absent", root / "c"), None),  # a class folder that is a broken link: not one
    (lambda root: Image.new("L", (200, 200)).save(root / "b" / "9.png"), r"b/9.png \(too large to decode safely"),
])
def test_links_and_bombs_are_named_and_nothing_is_a_traceback(tmp_path, monkeypatch, make, problem):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the 200 × 200 image is 40 times the limit
    write_images(tmp_path / "photos", {"a": 5, "b": 5})
    make(tmp_path / "photos")
    if problem is None:
        assert load(tmp_path / "photos").label_names == ("a", "b")
        return
    with pytest.raises(PipelineError, match=problem):
        load(tmp_path / "photos")
    folders.content_hash(str(tmp_path / "photos"))  # a changed folder's hash does not stumble on the link


def test_classes_named_train_and_test_in_a_flat_folder_are_classes(tmp_path):
    write_images(tmp_path, {"train": 10, "test": 10})
    data = load(tmp_path)
    assert data.label_names == ("test", "train") and data.train.count == 16


def test_a_text_folder_of_empty_files_is_one_line(tmp_path):
    for label in ("a", "b"):
        os.makedirs(tmp_path / label)
        for i in range(3):
            (tmp_path / label / f"{i}.txt").write_text("")
    with pytest.raises(PipelineError, match="every .txt file in .* is empty: there is no text to learn from"):
        load(tmp_path)


# A generator's folder: every image at any depth, no classes needed.

def test_an_unlabeled_folder_reads_every_image_at_any_depth_as_one_class_free_set(tmp_path):
    from tests.pictures import write_pictures
    write_pictures(tmp_path / "faces", 50, 32, nested=True)
    (tmp_path / "faces" / "notes.txt").write_text("not a picture")
    data = load(tmp_path / "faces", labeled=False, generative=True)
    assert data.label_names == () and data.num_classes == 0
    train, test = arrays(data.train), arrays(data.test)
    assert len(train["image"]) == 40 and len(test["image"]) == 10
    assert train["image"].shape[1:] == (32, 32, 3) and set(train["label"]) == {0}
    write_pictures(tmp_path / "flat", 10, 32)
    with pytest.raises(PipelineError, match="flat has no class subfolders"):  # a classifier needs its classes
        load(tmp_path / "flat")


def test_an_unlabeled_folder_ignores_class_folders_and_keeps_given_train_and_test_splits(tmp_path):
    write_images(tmp_path / "train", {"a": 6, "b": 6}, mode="RGB")
    write_images(tmp_path / "test", {"a": 2, "b": 2}, mode="RGB", start=100)
    data = load(tmp_path, labeled=False)
    assert data.train.count == 12 and data.test.count == 4 and data.label_names == ()


def test_a_generators_images_are_cropped_to_fill_the_size_and_never_upscaled(tmp_path):
    Image.new("RGB", (96, 64), (255, 0, 0)).save(tmp_path / "wide.png")  # 64 high, 96 wide
    for i in range(4):
        Image.new("RGB", (64, 64), (0, 0, 255)).save(tmp_path / f"{i}.png")
    data = load(tmp_path, labeled=False, generative=True, image_size=(32, 32))
    every = np.concatenate([arrays(data.train)["image"], arrays(data.test)["image"]])
    wide = every[np.argmax(every[..., 0].mean(axis=(1, 2)))]
    assert (wide[..., 0] == 255).all()  # filled edge to edge: no black bars
    with pytest.raises(PipelineError, match=r"^4 of the 5 images .* smaller than --image_size=64,80"):
        load(tmp_path, labeled=False, generative=True, image_size=(64, 80))
    with pytest.raises(PipelineError, match=r"smaller than --image_size=128,128 \(.* is 64x"):
        load(tmp_path, labeled=False, generative=True, image_size=(128, 128))


def test_a_folder_without_images_is_one_line_for_a_generator(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("words")
    with pytest.raises(PipelineError, match="holds no images at any depth"):
        load(tmp_path, labeled=False)
