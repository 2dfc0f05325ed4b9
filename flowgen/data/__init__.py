"""Datasets as LightningDataModules yielding integer levels (images) or points (toy 2-D)."""
