"""Classify image files with ONNX Runtime; the labels are in the .onnx file's metadata.

python onnxruntime_classify.py model.onnx photo.jpg ...
"""
import sys

import numpy as np
import onnxruntime
from PIL import Image

session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
labels = session.get_modelmeta().custom_metadata_map["labels.txt"].splitlines()
_, height, width, _ = session.get_inputs()[0].shape  # image: uint8 [batch, H, W, 3]
for path in sys.argv[2:]:
    rgb = np.asarray(Image.open(path).convert("RGB").resize((width, height)))[None]
    (probabilities,) = session.run(["probabilities"], {"image": rgb})
    best = int(np.argmax(probabilities[0]))
    print(f"{path}\t{labels[best]}\t{probabilities[0, best]:.4f}")
