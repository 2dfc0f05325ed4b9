"""Networks used inside models (pure torch)."""
