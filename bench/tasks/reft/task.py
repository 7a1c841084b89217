"""reft: Reference Twice (RefT), a Mask2Former-based baseline for few-shot instance segmentation
(FSIS, generalized FSIS, incremental FSIS), against plain Mask2Former fine-tuning."""

from bench.task import Method, Task

METHOD = "bench.tasks.reft.method:FewShotMethod"
BOTH = ("feature", "instance")

TASK = Task(
    name="reft",
    paper="Reference Twice: A Simple and Unified Baseline for Few-Shot Instance Segmentation "
    "(Han et al., 2023)",
    url="https://arxiv.org/abs/2301.01156",
    datamodule="bench.tasks.reft.data:FewShotCocoDataModule",
    fixture="bench.tasks.reft.fixture:fixture",
    datasets=("fashion-mnist",),
    primary="test/fsis_k10_nap_segm",
    higher_is_better=True,
    distributed=False,  # a loop method (bench/method.py): one process steps the fine-tunings
    methods=(
        Method("mask2former_ft", METHOD, "Mask2Former base-trained, then fine-tuned on the K shots"),
        Method(
            "reft",
            METHOD,
            "RefT: class centres re-weight the features, support object queries feed the queries; "
            "base distillation in iFSIS",
            {"refs": BOTH, "distill": True},
        ),
        Method(
            "reft_feature_only",
            METHOD,
            "RefT with the feature-level reference only (class centres)",
            {"refs": ("feature",), "distill": True},
        ),
        Method(
            "reft_instance_only",
            METHOD,
            "RefT with the instance-level reference only (support object queries)",
            {"refs": ("instance",), "distill": True},
        ),
        Method(
            "mask2former_ft_distill",
            METHOD,
            "iFSIS control: Mask2Former fine-tuning plus RefT's base distillation, no references "
            "(runs iFSIS only)",
            {"refs": (), "distill": True, "protocols": ("ifsis",)},
        ),
    ),
    headline=("test/ifsis_k10_bap_segm",),
    reported={
        "reft": {
            "fsis_k5_nap_segm": 14.2,
            "fsis_k10_nap_segm": 18.4,
            "fsis_k30_nap_segm": 22.5,
        },
        "mask2former_ft": {
            "fsis_k5_nap_segm": 12.7,
            "fsis_k10_nap_segm": 16.7,
            "fsis_k30_nap_segm": 20.8,
        },
    },
    reported_note="COCO, TFA splits (20 VOC classes novel), ResNet-50 Mask2Former: FSIS novel "
    "segm AP at 5/10/30 shots, RefT and the paper's Mask2Former+ft-full baseline (the authors' "
    "repository, fig/fsis_res.png; paper preset only; RefT +8.2/+9.4 over iFS-RCNN at 10/30)",
    figures=("predictions.png",),
)
