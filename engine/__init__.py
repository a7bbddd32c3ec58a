"""Plumbing shared by the command-line scripts: configs, checkpoints, EMA, the trainer."""
