"""Hyperparameter search over recipes with Optuna: `toolkit hpo RECIPE` and `toolkit hpo show`."""
