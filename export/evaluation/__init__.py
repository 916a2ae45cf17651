"""The evaluation command's tasks and what they share; `python -m export.evaluate` runs them."""
