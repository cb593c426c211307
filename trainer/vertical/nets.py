"""The networks of vertically partitioned training and how they are fitted (PyTorch).

* a party's network on its ``n`` standardised columns: ``n - n - 2n - n - 1``, that is
  hidden layers of ``n``, ``2n`` and ``n`` ReLU units and one sigmoid output; its first three
  layers are the party's *encoder*, the third hidden layer (``n`` values) its representation;
* the host's network on the joined representations (``m`` values, the parties' ``n`` summed):
  the same shape, ``m - m - 2m - m - 1`` (10-10-20-10-1 for a 6 + 4 split);
* the centralised baseline: the same shape on all raw columns, standardised.

The published text names a softmax output on one unit; a softmax over a single unit is the
constant 1, so the output here is a sigmoid unit, which is what a one-unit binary output
means. Training: binary cross-entropy (computed from the pre-sigmoid value,
``BCEWithLogitsLoss``, the numerically stable form of the same loss), Adam, learning rate
1e-3, batches of 32, 50 epochs, rows reshuffled every epoch by a seeded generator, one
thread: the same seed gives the same weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyastore.errors import UsageError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 1e-3

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise UsageError(f"epochs and batch size must be >= 1 and the learning rate > 0, "
                             f"got {self.epochs}, {self.batch_size}, {self.learning_rate}")


@dataclass(frozen=True)
class Curve:
    """Per-epoch training loss (mean binary cross-entropy) and training accuracy."""

    loss: tuple[float, ...]
    accuracy: tuple[float, ...]


def network(n_inputs: int, seed: int) -> Any:
    """``n - n - 2n - n - 1`` with ReLU hidden layers and a sigmoid output, seeded weights."""
    import torch

    torch.set_num_threads(1)  # tiny networks: one thread, and no fight with the other parties
    n = n_inputs
    net = torch.nn.Sequential(
        torch.nn.Linear(n, n), torch.nn.ReLU(),
        torch.nn.Linear(n, 2 * n), torch.nn.ReLU(),
        torch.nn.Linear(2 * n, n), torch.nn.ReLU(),
        torch.nn.Linear(n, 1), torch.nn.Sigmoid())
    # torch's default initialisation of nn.Linear, drawn from a generator of our own rather
    # than the global one, so that participants training side by side in one process (the
    # tests) still get their seed's weights
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, torch.nn.Linear):
                torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(layer.in_features)
                torch.nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return net


ENCODER_LAYERS = 3  # dense layers up to and including the third hidden layer


def fit(net: Any, x: np.ndarray, y: np.ndarray, config: TrainConfig, seed: int) -> Curve:
    """Train ``net`` in place on float32 rows ``x`` and 0/1 labels ``y`` (module docstring)."""
    import torch

    torch.set_num_threads(1)
    config.check()
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    targets = torch.from_numpy(np.asarray(y, dtype=np.float32).reshape(-1, 1))
    logits_of = net[:-1]  # everything but the final sigmoid
    loss_fn = torch.nn.BCEWithLogitsLoss()
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    losses, accuracies = [], []
    for _ in range(config.epochs):
        net.train()
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(logits_of(inputs[batch]), targets[batch])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(order))
        net.eval()
        with torch.no_grad():
            predicted = (logits_of(inputs) >= 0).float()
        accuracies.append(float((predicted == targets).float().mean()))
    net.eval()
    return Curve(tuple(losses), tuple(accuracies))


def probabilities(net: Any, x: np.ndarray) -> np.ndarray:
    """The network's output (probability of class 1) for each row, in float64."""
    import torch

    with torch.no_grad():
        rows = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return net(rows).double().numpy()[:, 0]
