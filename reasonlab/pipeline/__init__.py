"""Multi-stage recipes: cached stages, evaluation of every model, one results table."""
