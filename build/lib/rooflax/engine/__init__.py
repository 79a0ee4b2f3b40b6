"""Pricing many configurations: planning chunks, the vectorized JAX engine, one point, many processes."""
