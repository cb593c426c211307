"""Synthetic rare events for training: a Capsule-Network generator and two baselines.

* ``capsnet``   -- encode real fraud rows into the fraud class capsule, perturb it, decode;
* ``baselines`` -- ``random_rows`` (uniform within the per-feature range of real frauds) and
  ``smote_rows`` (imbalanced-learn's SMOTE, as in the Bitcoin fraud paper).

Every generator takes the *training* rows only (the caller keeps the test set out) and returns
new rows of the minority class, marked synthetic by the caller. Frameworks are imported
inside the functions.
"""
