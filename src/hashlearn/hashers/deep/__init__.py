"""Deep hashers (PyTorch). This sub-package is the only part of hashlearn that imports torch."""
