"""Classify image files with the SavedModel (what TF Serving serves), labels from labels.txt beside it.

python saved_model_classify.py runs/dense/saved_model photo.jpg ...
"""
import os
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
labels = open(os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), "labels.txt")).read().splitlines()
_, height, width, channels = serve.structured_input_signature[1]["image"].shape  # uint8, the model's channels
for path in sys.argv[2:]:
    image = Image.open(path).convert("L" if channels == 1 else "RGB").resize((width, height))
    pixels = np.asarray(image, np.uint8).reshape(1, height, width, channels)
    probabilities = tf.nn.softmax(serve(image=tf.constant(pixels))["logits"])[0].numpy()
    best = int(np.argmax(probabilities))
    print(f"{path}\t{labels[best]}\t{probabilities[best]:.4f}")
