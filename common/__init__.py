"""Shared by every layer, importing nothing of the project: errors, atomic files, progress, devices and seeds."""
