"""Measurements of real kernels: reading them, predicting them, fitting the achieved terms."""
