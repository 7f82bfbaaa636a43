"""Malleable-latent diffusion (papers/000, SPEC §2)."""
