"""Two shapes of method: a fitted line (trained) and the training mean (a loop); ``Median`` is
the method an installed distribution adds by entry point."""

import torch
from torchmetrics import MeanSquaredError

from bench.method import LoopMethod, TrainedMethod


class Fit(TrainedMethod):
    def __init__(self, cfg, bias, lr):
        super().__init__(cfg)
        self.net, self.lr, self.mse = torch.nn.Linear(1, 1, bias=bias), lr, MeanSquaredError()

    def training_step(self, batch, _):
        return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

    def test_step(self, batch, _):
        self.mse(self.net(batch[0]), batch[1])
        self.log("test/mse", self.mse)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class Mean(LoopMethod):
    def setup(self, datamodule):
        self.train, self.test = datamodule.train, datamodule.test

    def step(self):
        self.mean = self.train.tensors[1].mean()
        return True

    def results(self):
        return {"mse": float(((self.test.tensors[1] - self.mean) ** 2).mean())}


class Median(Mean):
    def step(self):
        self.mean = self.train.tensors[1].median()
        return True
