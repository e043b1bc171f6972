"""The Keras 3 backend: the model builder (build.py), the custom layers and their registration,
weights in and out, saved files, keras.applications files, and the choice of Keras backend."""
