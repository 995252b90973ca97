"""Training: the pure train step and objectives, the loop, checkpoints, metrics and the mesh."""
