"""Shipped model weights (installed as the package ``neuralzip.weights``)."""
