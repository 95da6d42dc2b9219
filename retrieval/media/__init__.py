"""Decoding media safely: images with a pixel guard, uniformly sampled video frames."""
