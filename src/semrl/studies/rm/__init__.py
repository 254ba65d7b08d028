"""Reward models across languages (Hong et al., 2024): transfer matrix, representation shift, best-of-n."""
