"""asyncfl: buffered asynchronous federated learning (FedBuff, AISTATS 2022) as run in production
by PAPAYA (MLSys 2022), against synchronous FedAvg / FedAvgM with over-selection. The claims and
their bounds are the presets' ``claims:`` sections."""

from bench.task import Method, Series, Task

METHOD = "bench.tasks.asyncfl.method:FederatedMethod"

TASK = Task(
    name="asyncfl",
    paper="PAPAYA: Practical, Private, and Scalable Federated Learning (MLSys 2022) with "
    "FedBuff: Federated Learning with Buffered Asynchronous Aggregation (AISTATS 2022)",
    url="https://arxiv.org/abs/2111.04877",
    datamodule="bench.tasks.asyncfl.data:FederatedDataModule",
    fixture="bench.tasks.asyncfl.fixture:fixture",
    datasets=("fashion-mnist",),
    primary="test/time_to_target_hi",
    higher_is_better=False,
    headline=("test/time_c10", "test/time_sigma0"),
    distributed=False,  # an event-driven FL simulator in one process: a sweep parallelizes runs
    methods=(
        Method(
            "fedbuff",
            METHOD,
            "FedBuff: C clients always busy, buffer K, staleness weight (1+tau)^-1/2, server SGD",
            {"algorithm": "fedbuff"},
        ),
        Method(
            "fedasync",
            METHOD,
            "FedAsync: each report applied at once (FedBuff's K = 1)",
            {"algorithm": "fedasync"},
        ),
        Method(
            "fedavg",
            METHOD,
            "sync FedAvg: select ceil(1.3 C), round ends at the C-th report",
            {"algorithm": "sync"},
        ),
        Method(
            "fedavgm",
            METHOD,
            "sync FedAvg with server momentum 0.9 (FedBuff's baseline)",
            {"algorithm": "sync"},
        ),
        Method(
            "sync_best",
            METHOD,
            "the best-tuned sync method: FedAvg's and FedAvgM's lr searches, the better chosen on val",
            {"algorithm": "sync"},
        ),
    ),
    series=(
        Series(
            "speedup_vs_concurrency",
            "concurrency C",
            "speedup over the best sync method (time to target)",
            (10, 100, 1000),
            "test/time_c{x}",
            over="sync_best",
            log_x=True,
        ),
        Series(
            "speedup_vs_sigma",
            "device-speed spread sigma (log-normal), C = 1000",
            "speedup over the best sync method (time to target)",
            (0, 0.5, 1, 1.5),
            "test/time_sigma{x}",
            over="sync_best",
        ),
        Series(
            "speedup_vs_buffer",
            "FedBuff's buffer K, C = 1000",
            "speedup over the best sync method (time to target)",
            (5, 10, 30, 100),
            "test/time_k{x}",
            over="sync_best",
            log_x=True,
        ),
    ),
    reported={
        "fedbuff": {"speedup_vs_sync_high_C": 5.0, "comm_reduction_vs_sync": 8.0},
        "fedavgm": {"fedbuff_speedup_over": 3.8},
    },
    reported_note="PAPAYA: async 5x faster, ~8x less communication than sync at high concurrency "
    "(production, ~100M devices); FedBuff: 3.8x faster than FedAvgM (paper preset only)",
)
