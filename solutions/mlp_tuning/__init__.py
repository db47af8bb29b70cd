"""Assignment `mlp_tuning` (sheet 001): standardisation, augmentation, an MLP, a search."""
