"""Classify image files with the LiteRT interpreter; the labels are packed in the .tflite file (a zip at its end).

python litert_classify.py model.tflite photo.jpg ...
"""
import sys
import zipfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

labels = zipfile.ZipFile(sys.argv[1]).read("labels.txt").decode().splitlines()
classify = Interpreter(model_path=sys.argv[1]).get_signature_runner()
_, height, width, _ = classify.get_input_details()["image"]["shape"]
scale, zero_point = classify.get_output_details()["probabilities"]["quantization"]  # (0, 0) unless int8
for path in sys.argv[2:]:
    rgb = np.asarray(Image.open(path).convert("RGB").resize((width, height)))[None]  # 1 × H × W × 3 uint8
    (scores,) = classify(image=rgb).values()
    probabilities = (scores[0] - zero_point) * scale if scale else scores[0]
    best = int(np.argmax(probabilities))
    print(f"{path}\t{labels[best]}\t{probabilities[best]:.4f}")
