"""Invertible layers and discrete normalizing flows (pure torch)."""
