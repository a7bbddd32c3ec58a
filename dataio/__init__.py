"""Data: MNIST loading and image files (PNG folders, npz archives, grids)."""
