"""Figures: image grids and 2-D density plots (matplotlib, torchvision)."""
