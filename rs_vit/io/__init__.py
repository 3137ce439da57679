"""Raster and vector input/output: scenes, band names, labels, atomic writers."""
