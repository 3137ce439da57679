"""Datasets over (scene, window) pairs, spatial splits, per-band statistics, augmentation."""
