"""A Capsule Network that learns fraud / non-fraud and generates new fraud rows.

Architecture (as in the ASTORE + CapsNet fraud paper, made precise):

* input: standardized feature rows (mean 0, scale 1 per feature, fitted on the training rows);
* a fully connected feature layer of 100 units (ReLU), reshaped into 10 primary capsules of
  10 dimensions, each passed through the squash non-linearity
  ``v = |s|^2 / (1 + |s|^2) * s / |s|``;
* dynamic routing (routing-by-agreement, 3 iterations) to 2 class capsules of 16 dimensions:
  prediction vectors ``u_hat[i,j] = W[i,j] u_i``; logits ``b[i,j] = 0``; each iteration takes
  coupling coefficients ``c[i,:] = softmax_j(b[i,:])`` over the output capsules, forms
  ``v_j = squash(sum_i c[i,j] u_hat[i,j])`` and adds the agreement ``u_hat[i,j] . v_j`` to
  ``b[i,j]``;
* the length of class capsule ``j`` is the score of class ``j`` (0 non-fraud, 1 fraud), trained
  with the margin loss ``T_j max(0, 0.9 - |v_j|)^2 + 0.5 (1 - T_j) max(0, |v_j| - 0.1)^2``;
* a decoder of three fully connected layers (32 -> 64 -> 128 -> n_features, ReLU between,
  linear output) reconstructs the input from the class capsules with every capsule but the
  true label's masked to zero; its mean squared error, weighted by ``reconstruction_weight``,
  is added to the margin loss.

Training: Adam (learning rate 1e-3), mini-batches of 256, ``epochs`` passes (250 by default),
a progress bar on stderr. Seeded: the same data, seed and torch version give the same network.

Generation: encode real fraud rows, take the fraud capsule's 16-vector (the non-fraud capsule
masked to zero, as in training), multiply each element by ``1 + e`` with ``e`` drawn uniformly
from ``[-tweak, tweak]``, decode, and undo the standardization. Rows are drawn from the real
frauds in turn (with replacement once they are used up) until ``n_rows`` are made.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

PRIMARY_CAPSULES = 10
PRIMARY_DIM = 10
CLASS_CAPSULES = 2
CLASS_DIM = 16
ROUTING_ITERATIONS = 3
FEATURE_UNITS = PRIMARY_CAPSULES * PRIMARY_DIM


@dataclass(frozen=True)
class CapsNetConfig:
    epochs: int = 250
    batch_size: int = 256
    learning_rate: float = 1e-3
    reconstruction_weight: float = 1.0
    tweak: float = 0.1
    seed: int = 0
    progress: bool = True


def squash(s, dim: int = -1):
    """``|s|^2/(1+|s|^2) * s/|s|`` along ``dim``, with a small epsilon for |s| = 0."""
    import torch

    squared = (s * s).sum(dim=dim, keepdim=True)
    return squared / (1.0 + squared) * s / torch.sqrt(squared + 1e-9)


def _build_network(n_features: int):
    import torch
    from torch import nn

    class CapsNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Linear(n_features, FEATURE_UNITS)
            self.route_weights = nn.Parameter(
                0.05 * torch.randn(PRIMARY_CAPSULES, CLASS_CAPSULES, CLASS_DIM, PRIMARY_DIM))
            self.decoder = nn.Sequential(
                nn.Linear(CLASS_CAPSULES * CLASS_DIM, 64), nn.ReLU(),
                nn.Linear(64, 128), nn.ReLU(),
                nn.Linear(128, n_features),
            )

        def encode(self, x):
            """Class capsules ``v``: (batch, 2, 16)."""
            primary = torch.relu(self.features(x)).view(-1, PRIMARY_CAPSULES, PRIMARY_DIM)
            primary = squash(primary)
            # u_hat[b, i, j, :] = W[i, j] @ u[b, i]
            u_hat = torch.einsum("ijdk,bik->bijd", self.route_weights, primary)
            logits = torch.zeros(x.shape[0], PRIMARY_CAPSULES, CLASS_CAPSULES, device=x.device)
            for iteration in range(ROUTING_ITERATIONS):
                coupling = torch.softmax(logits, dim=2)  # over the output capsules
                v = squash((coupling.unsqueeze(-1) * u_hat).sum(dim=1))
                if iteration < ROUTING_ITERATIONS - 1:
                    logits = logits + (u_hat * v.unsqueeze(1)).sum(dim=-1)
            return v

        def decode(self, capsules, labels):
            mask = torch.nn.functional.one_hot(labels, CLASS_CAPSULES).to(capsules.dtype)
            return self.decoder((capsules * mask.unsqueeze(-1)).flatten(1))

        def forward(self, x, labels):
            v = self.encode(x)
            return v, self.decode(v, labels)

    return CapsNet()


def margin_loss(lengths, labels):
    import torch

    target = torch.nn.functional.one_hot(labels, CLASS_CAPSULES).to(lengths.dtype)
    present = target * torch.clamp(0.9 - lengths, min=0.0) ** 2
    absent = 0.5 * (1.0 - target) * torch.clamp(lengths - 0.1, min=0.0) ** 2
    return (present + absent).sum(dim=1).mean()


class CapsNetGenerator:
    """Fit on training rows, then ``generate`` synthetic fraud rows (label 1)."""

    def __init__(self, config: CapsNetConfig = CapsNetConfig()):
        self.config = config
        self.network = None
        self.mean = None
        self.scale = None
        self.history: list[float] = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> CapsNetGenerator:
        import torch

        config = self.config
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y).astype(np.int64)
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError("CapsNet needs a non-empty 2-D x and one label per row")
        if not set(np.unique(y)) <= {0, 1} or (y == 1).sum() == 0:
            raise ValueError("CapsNet needs binary labels with at least one fraud (1) row")
        self.mean = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale = np.where(scale > 0, scale, 1.0)
        standardized = torch.tensor((x - self.mean) / self.scale, dtype=torch.float32)
        labels = torch.tensor(y)
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        self.network = _build_network(x.shape[1])
        optimizer = torch.optim.Adam(self.network.parameters(), lr=config.learning_rate)
        epochs = range(config.epochs)
        bar = None
        if config.progress:
            try:
                from tqdm import tqdm

                bar = tqdm(epochs, desc="CapsNet", unit="epoch", file=sys.stderr, leave=False)
                epochs = bar
            except ImportError:
                pass
        self.network.train()
        for _ in epochs:
            order = torch.randperm(len(standardized), generator=generator)
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                batch = order[start:start + config.batch_size]
                capsules, reconstruction = self.network(standardized[batch], labels[batch])
                loss = margin_loss(capsules.norm(dim=-1), labels[batch]) + (
                    config.reconstruction_weight
                    * torch.mean((reconstruction - standardized[batch]) ** 2))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            self.history.append(total / len(order))
            if bar is not None:
                bar.set_postfix(loss=f"{self.history[-1]:.4f}")
        if bar is not None:
            bar.close()
        self.network.eval()
        return self

    def class_scores(self, x: np.ndarray) -> np.ndarray:
        """Capsule lengths (n_rows, 2): the network's own class scores."""
        import torch

        standardized = torch.tensor((np.asarray(x, dtype=np.float64) - self.mean) / self.scale,
                                    dtype=torch.float32)
        with torch.no_grad():
            return self.network.encode(standardized).norm(dim=-1).numpy()

    def generate(self, fraud_rows: np.ndarray, n_rows: int, *, tweak: float | None = None,
                 seed: int | None = None) -> np.ndarray:
        """``n_rows`` synthetic fraud rows from the real ``fraud_rows`` (training frauds)."""
        import torch

        if self.network is None:
            raise RuntimeError("fit the generator first")
        fraud_rows = np.asarray(fraud_rows, dtype=np.float64)
        if n_rows <= 0:
            return np.empty((0, fraud_rows.shape[1]))
        if len(fraud_rows) == 0:
            raise ValueError("generation needs at least one real fraud row")
        tweak = self.config.tweak if tweak is None else tweak
        rng = np.random.default_rng(self.config.seed if seed is None else seed)
        picks = np.concatenate([rng.permutation(len(fraud_rows))
                                for _ in range(-(-n_rows // len(fraud_rows)))])[:n_rows]
        sources = torch.tensor((fraud_rows[picks] - self.mean) / self.scale, dtype=torch.float32)
        with torch.no_grad():
            capsules = self.network.encode(sources)
            noise = rng.uniform(-tweak, tweak, size=(n_rows, CLASS_DIM))
            capsules[:, 1, :] = capsules[:, 1, :] * torch.tensor(1.0 + noise, dtype=torch.float32)
            labels = torch.ones(n_rows, dtype=torch.int64)
            decoded = self.network.decode(capsules, labels).numpy().astype(np.float64)
        return decoded * self.scale + self.mean
