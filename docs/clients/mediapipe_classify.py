"""Classify image files with MediaPipe Tasks, which reads the label names from the .tflite file itself.

python mediapipe_classify.py model.tflite photo.jpg ...   (in a venv with mediapipe==0.10.21)
"""
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision
from PIL import Image

options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=sys.argv[1]), max_results=1)
with vision.ImageClassifier.create_from_options(options) as classifier:
    for path in sys.argv[2:]:
        rgb = np.asarray(Image.open(path).convert("RGB"))  # what a camera gives, even from a grayscale file
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        top = result.classifications[0].categories[0]
        print(f"{path}\t{top.category_name}\t{top.score:.4f}")
