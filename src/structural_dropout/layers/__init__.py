"""Layers only: the structural dropout layer and the truncatable layers built around it."""
