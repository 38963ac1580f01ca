"""Matrix factorization with biases, the rating model of decentralizepy's MovieLens runs.

Reference: Y. Koren, R. Bell, C. Volinsky, "Matrix Factorization Techniques for Recommender
Systems", IEEE Computer 42(8), 2009, eq. 3: the predicted rating of item i by user u is

    r_ui = mu + b_u + b_i + <p_u, q_i>

with a global bias mu, a bias per user and per item, and ``dim`` latent factors per user
(p_u) and per item (q_i). decentralizepy (``datasets/MovieLens.py``) keeps only <p_u, q_i>,
with 20 factors; the biases are Koren's.

Parameters: (num_users + num_items) x (dim + 1) + 1; for MovieLens latest-small (610 users,
9,724 movies) with dim 20: 217,015.
"""

import torch
from torch import nn


class MatrixFactorization(nn.Module):
    def __init__(self, num_users: int, num_items: int, dim: int = 20):
        super().__init__()
        self.p = nn.Embedding(num_users, dim)
        self.q = nn.Embedding(num_items, dim)
        self.b_u = nn.Embedding(num_users, 1)
        self.b_i = nn.Embedding(num_items, 1)
        self.mu = nn.Parameter(torch.zeros(1))
        # Small but not zero: at zero p and q would get no gradient (each one's gradient is
        # the other), and small keeps the first predictions close to a biases-only model.
        for table in (self.p, self.q, self.b_u, self.b_i):
            nn.init.normal_(table.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: int64 (B, 2) of (user, item) numbers -> (B,) predicted ratings."""
        u, i = x[:, 0], x[:, 1]
        dot = (self.p(u) * self.q(i)).sum(dim=1)
        return self.mu + self.b_u(u)[:, 0] + self.b_i(i)[:, 0] + dot

    def flops_per_sample(self) -> float:
        """The dot product: ``dim`` multiply-adds. Table look-ups cost no arithmetic."""
        return 2.0 * self.p.embedding_dim
