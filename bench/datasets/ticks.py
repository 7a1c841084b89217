"""For algorithms driven one iteration per ``training_step`` (federated rounds, PSRO, RL): the
DataModule serves an endless stream of step numbers and the state lives in the method."""

from torch.utils.data import IterableDataset


class Ticks(IterableDataset):
    """0, 1, 2, ... forever; use with ``DataLoader(Ticks(), batch_size=None)``."""

    def __iter__(self):
        i = 0
        while True:
            yield i
            i += 1
