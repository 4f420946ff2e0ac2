"""Read-only readers of the apps' own databases."""
