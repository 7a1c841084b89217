"""doorping: backdoor attacks against dataset distillation (Liu et al., NDSS 2023)."""

from bench.task import Method, Task

METHOD = "bench.tasks.doorping.method:DistillAttack"

TASK = Task(
    name="doorping",
    paper="Backdoor Attacks Against Dataset Distillation (Liu et al., NDSS 2023)",
    url="https://arxiv.org/abs/2301.01197",
    datamodule="bench.tasks.doorping.data:DistillDataModule",
    fixture="bench.tasks.doorping.fixture:fixture",
    datasets=("fashion-mnist",),
    primary="test/asr",
    higher_is_better=True,
    # the control, utility, the trigger's pixel range (valid pixels: [0, 1]) and a defense
    headline=("test/asr_clean", "test/cta", "test/trigger_px_max", "test/fp_asr", "test/fp_asr_clean"),
    distributed=False,  # a loop method (bench/method.py): one process steps the distillation
    methods=(
        Method(
            "clean", METHOD, "no attack; ASR measured with NAIVEATTACK's white patch", {"attack": "clean"}
        ),
        Method(
            "naive",
            METHOD,
            "NAIVEATTACK: white patch on 1% of the real images, relabelled to the target",
            {"attack": "naive"},
        ),
        Method(
            "doorping",
            METHOD,
            "DOORPING: the patch optimised during distillation to excite a hidden unit (unclamped)",
            {"attack": "doorping"},
        ),
        Method(
            "doorping_clamped",
            METHOD,
            "our extension: DOORPING with the patch clamped to valid pixel values after every trigger step",
            {"attack": "doorping_clamped"},
        ),
    ),
    reported={"doorping": {"test/asr": 1.0}},
    reported_note="the paper's abstract: DOORPING ASR close to 1.0 in all cases (tables not transcribed)",
    figures=("distilled.png",),
    seed_varies=("init", "order"),
    seed_fixed={
        "data": "the real pool and test split are a fixed per-class subset (data.subset_seed), as "
        "the paper distils one fixed dataset; the seed draws the poisoned images, the synthetic "
        "set's and the trigger's initialisation and every batch and network after them"
    },
    version=5,
)
