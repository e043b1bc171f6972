"""Weights as plain numpy arrays (the interchange format of the backends) and the readers of
other frameworks' weight files (PyTorch .pth/.pt/.safetensors)."""
