"""Metrics: bits per dimension and dequantisation (pure torch)."""
