"""The diffusion process and its samplers. They take any denoiser callable and hold no hidden state."""
