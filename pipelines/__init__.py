"""dlpipe: absl flags → RunConfig → Task → tf.data → Keras model → stages → artifacts."""
