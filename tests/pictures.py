"""Folders of colour pictures the tests make: a shape (disc, square or triangle) of one colour on a background of
another, at random places and sizes; seeded, so every run writes the same files."""

import os

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("disc", "square", "triangle")


# With `tinted`, each shape has its colour (on a random background): a class a network with random weights can
# tell by its colours alone (a backbone the tests make has no trained features for shapes).
TINTS = {"disc": (230, 40, 40), "square": (40, 200, 40), "triangle": (40, 60, 230)}


def picture(rng: np.random.Generator, side: int, shape: str, gray: bool = False, tinted: bool = False) -> Image.Image:
    background, colour = (tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2))
    colour = TINTS[shape] if tinted else colour
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    size = rng.uniform(0.3, 0.6) * side
    x, y = rng.uniform(0, side - size, 2)
    box = (x, y, x + size, y + size)
    if shape == "disc":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x, y + size), (x + size, y + size), (x + size / 2, y)], fill=colour)
    return image.convert("L") if gray else image


def write_pictures(folder, count: int, side: int = 32, *, seed: int = 0, classes: bool = False, gray: bool = False,
                   nested: bool = False, tinted: bool = False) -> list[str]:
    """`count` PNG files in `folder`: in one subfolder per shape with `classes`, in a few nested folders with
    `nested`, else all in the folder itself."""
    rng, paths = np.random.default_rng(seed), []
    for i in range(count):
        shape = SHAPES[i % len(SHAPES)]
        where = os.path.join(folder, shape) if classes else \
            os.path.join(folder, f"album{i % 2}", f"day{i % 3}") if nested else str(folder)
        os.makedirs(where, exist_ok=True)
        paths.append(os.path.join(where, f"{i:05d}.png"))
        picture(rng, side, shape, gray, tinted).save(paths[-1])
    return paths
