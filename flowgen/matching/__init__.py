"""Flow matching: probability paths, couplings, time samplers and the regression loss (pure torch)."""
