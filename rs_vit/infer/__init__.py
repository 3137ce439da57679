"""Sliding-window prediction: window grid, blend weights, streaming strip accumulator."""
