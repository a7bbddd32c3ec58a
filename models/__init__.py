"""Denoising networks. They map (x, t) to a tensor shaped like x and know nothing of diffusion."""
