"""Stage 5: azinfer against Azure (inventory, preflight, deployment), the only code that imports ``azure.*``."""
