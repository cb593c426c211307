"""CTGAN synthetic frauds, in an interpreter of its own (``scripts/ctgan_env.sh``).

``python trainer/synth/ctgan_worker.py FRAUDS.npy OUT.npy COUNT SEED EPOCHS``: fits the
``ctgan`` package's CTGAN on the fraud rows (every column continuous) and writes COUNT
sampled rows. The ``ctgan`` package needs pandas < 3, which the project does not pin, so
``trainer.scarcity_experiment`` runs this file with the interpreter of ``.venv-ctgan``; it
imports nothing of the project.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import numpy as np
    import pandas as pd
    import torch
    from ctgan import CTGAN

    source, target, count, seed, epochs = argv[0], argv[1], int(argv[2]), int(argv[3]), \
        int(argv[4])
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    frauds = np.load(source)
    frame = pd.DataFrame(frauds, columns=[f"c{i}" for i in range(frauds.shape[1])])
    # CTGAN draws batches with replacement; a batch (a multiple of its pac of 10) larger
    # than the few real frauds is what lets it train on them at all.
    model = CTGAN(epochs=epochs, batch_size=100, pac=10, verbose=False, enable_gpu=False)
    model.set_random_state(seed)
    model.fit(frame)
    rows = model.sample(count).to_numpy(dtype=np.float64)
    np.save(target, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
