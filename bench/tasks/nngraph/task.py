"""nngraph: CNN training as a time-evolving weight graph; early-epoch graph summaries predict
final performance (Vahedian et al., arXiv 2111.05410; TASKS.md: "Convolutional neural network
dynamics: a graph perspective")."""

from bench.task import Method, Task

PREDICTOR = "bench.tasks.nngraph.method:Predictor"


def _predictor(name: str, families: list[str], description: str) -> Method:
    return Method(name, PREDICTOR, description, {"families": families})


TASK = Task(
    name="nngraph",
    paper="Leveraging the Graph Structure of Neural Network Training Dynamics (CIKM 2022 short)",
    url="https://arxiv.org/abs/2111.05410",
    datamodule="bench.tasks.nngraph.data:PopulationDataModule",
    fixture="bench.tasks.nngraph.fixture:fixture",
    datasets=(),  # cpu and smoke read sklearn's bundled digits; the paper preset reads data.root
    primary="test/acc",
    higher_is_better=True,
    distributed=False,  # a population trained in the data step, predictors fit by sklearn
    methods=(
        _predictor("degree", ["degree"], "weighted-degree summaries of epochs 1..k (the paper's)"),
        _predictor("centrality", ["centrality"], "eigenvector-centrality summaries of epochs 1..k"),
        _predictor("degree_centrality", ["degree", "centrality"], "degree and centrality summaries"),
        _predictor("weights", ["weights"], "baseline: |W| statistics per layer, no graph structure"),
        _predictor("curve", ["curve"], "baseline: held-out accuracy/loss and training loss, epochs 1..k"),
        _predictor("epoch_acc", ["epoch_acc"], "baseline: held-out accuracy after epoch k alone"),
        _predictor("hparams", ["hparams"], "baseline: the hyperparameters alone (no training evidence)"),
    ),
    headline=("test/pearson", "test/auroc", "test/acc_k1", "test/base_rate", "test/diverged"),
    # A seed draws the population (with population.seed) and its folds, and the forests' random
    # state (predictor.kind=linear has none: its fit is deterministic).
    seed_varies=("data", "init"),
    seed_fixed={
        "order": "a predictor is fit by sklearn on whole folds at once: there is no order of examples"
    },
    reported={"degree": {"lenet_cifar10_acc_k5": "> 0.93"}},
    reported_note="good/bad accuracy of the weighted-degree summary predictor, 5 epochs of LeNet on "
    "CIFAR-10, as TASKS.md states it; the cpu preset is LeNets on sklearn digits",
)
