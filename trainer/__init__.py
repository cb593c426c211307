"""Server-side half of pyastore: fit models and export them into analytic-store containers.

Heavy frameworks (xgboost, scikit-learn, torch) are imported lazily inside the functions that
need them, so ``import trainer`` works on a machine that has none of them.
"""
