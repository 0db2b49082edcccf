"""Numba-jitted loops: plain arrays and scalars in, caller-allocated arrays out, no checks."""
