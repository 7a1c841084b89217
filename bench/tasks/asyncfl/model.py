"""The client model and its functional form: parameters as one flat vector, so a server step is
vector arithmetic and many clients train at once (``torch.func.vmap`` over clients)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from bench.errors import BenchError


def build_net(arch: str, in_dim: int, classes: int, hidden: int) -> nn.Module:
    """``logreg`` (multinomial logistic regression) or ``mlp`` (one hidden ReLU layer)."""
    if arch == "logreg":
        return nn.Sequential(nn.Flatten(), nn.Linear(in_dim, classes))
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))
    raise BenchError(f"unknown model.arch {arch!r}: choose logreg or mlp")


class FlatNet:
    """``net`` evaluated at a flat parameter vector; ``local_sgd`` trains a batch of clients."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.names = [n for n, _ in net.named_parameters()]
        self.shapes = [p.shape for p in net.parameters()]
        self.sizes = [p.numel() for p in net.parameters()]
        self.dim = sum(self.sizes)
        self._grads = vmap(grad(self._loss))
        # Logistic regression has a closed-form gradient: batched matmuls, no autograd (~50x faster
        # for 30-example clients; the tests check it against torch.optim.SGD).
        self.logreg = len(self.shapes) == 2 and len(self.shapes[0]) == 2 and isinstance(net[-1], nn.Linear)
        self.logreg = self.logreg and len(net) == 2

    def flatten(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.net.parameters()]).clone()

    def load(self, flat: torch.Tensor) -> None:
        with torch.no_grad():
            for p, chunk in zip(self.net.parameters(), flat.split(self.sizes), strict=True):
                p.copy_(chunk.view_as(p))

    def params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        chunks = flat.split(self.sizes)
        return {n: c.view(s) for n, c, s in zip(self.names, chunks, self.shapes, strict=True)}

    def logits(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.net, self.params(flat), (x,))

    def _loss(self, flat, x, y, mask):
        per = F.cross_entropy(self.logits(flat, x), y, reduction="none")
        return (per * mask).sum() / mask.sum().clamp(min=1.0)

    @torch.no_grad()
    def accuracy(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int = 5000) -> float:
        hits = sum(
            (self.logits(flat, x[i : i + chunk]).argmax(1) == y[i : i + chunk]).sum().item()
            for i in range(0, len(x), chunk)
        )
        return hits / len(x)

    @torch.no_grad()
    def accuracies(
        self, flats: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int = 5000
    ) -> list[float]:
        """``accuracy`` of each of the models ``flats`` [M, P]; logistic regression in one matmul
        (the examples are read once for all M models)."""
        if not self.logreg:
            return [self.accuracy(f, x, y, chunk) for f in flats]
        (k, d), m = self.shapes[0], len(flats)
        w, b = flats[:, : k * d].reshape(m * k, d), flats[:, k * d :].reshape(m * k)
        hits = torch.zeros(m, dtype=torch.float64)
        for i in range(0, len(x), chunk):
            logits = torch.addmm(b, x[i : i + chunk].flatten(1), w.t()).view(-1, m, k)
            hits += (logits.argmax(2) == y[i : i + chunk, None]).sum(0)
        return (hits / len(x)).tolist()

    def local_sgd(self, start: torch.Tensor, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, lr: float):
        """Plain minibatch SGD from ``start`` ([P], or [B, P]: one start per client) for clients b:
        x [B, S, b, ...], y/mask [B, S, b] (S steps of b examples, padding masked out; an
        all-padding step changes nothing).
        Returns the deltas [B, P] (trained minus start)."""
        if self.logreg:
            return self._logreg_sgd(start, x, y, mask, lr)
        flat = start.expand(len(x), -1).clone()
        for s in range(x.shape[1]):
            flat -= lr * self._grads(flat, x[:, s], y[:, s], mask[:, s])
        return flat - start

    @torch.no_grad()
    def _logreg_sgd(self, start, x, y, mask, lr: float) -> torch.Tensor:
        """``local_sgd`` for logistic regression: the cross-entropy gradient (softmax - onehot) x,
        applied in place on the clients' rows of the output."""
        (k, d), b = self.shapes[0], len(x)
        out = start.expand(b, -1).clone()
        w, bias = out[:, : k * d].view(b, k, d), out[:, k * d :]
        for s in range(x.shape[1]):
            xs, ms = x[:, s].reshape(b, -1, d), mask[:, s]
            g = torch.baddbmm(bias[:, None, :], xs, w.transpose(1, 2)).softmax(-1)
            g -= F.one_hot(y[:, s], k).to(g.dtype)
            g *= (ms / ms.sum(1, keepdim=True).clamp(min=1.0))[..., None]
            w.baddbmm_(g.transpose(1, 2), xs, alpha=-lr)
            bias.sub_(g.sum(1), alpha=lr)
        return out.sub_(start)
