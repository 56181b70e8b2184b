"""Training: produces weights files (learned models need the [train] extra, torch)."""
