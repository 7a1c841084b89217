"""A toy task that lives outside bench: a line through points. The tests copy this folder (as
``BENCH_TASK_PATH`` folder or an installed distribution) to prove a task is its folder and presets."""

from bench.task import Method, Task

TASK = Task(
    name="toy",
    paper="A line through noisy points (a task that is only its folder and presets)",
    url="https://example.org/toy-line",
    datamodule="toy.data:Points",
    primary="test/mse",
    higher_is_better=False,
    methods=(
        Method("fit", "toy.method:Fit", "a linear model fitted by SGD", {"bias": True}),
        Method("mean", "toy.method:Mean", "the training targets' mean"),
    ),
    fixture="toy.fixture:fixture",
    datasets=("fashion-mnist",),
    ddp_batch="data.batch_size",
)
