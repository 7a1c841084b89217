"""emo: EMO, efficient models from the inverted residual mobile block (Zhang et al., ICCV 2023)."""

from bench.task import Method, Task

METHOD = "bench.tasks.emo.method:ImageClassifier"
EMO = ("emo_1m", "emo_2m", "emo_5m", "emo_6m")
# Parameter counts from the official training logs; MACs at 224x224 from the paper (fvcore).
LOGGED = {
    "emo_1m": {"params": 1_361_000, "flops": 261e6},
    "emo_2m": {"params": 2_377_000, "flops": 439e6},
    "emo_5m": {"params": 5_109_000, "flops": 903e6},
    "emo_6m": {"params": 6_168_000, "flops": 961e6},
}

TASK = Task(
    name="emo",
    paper="Rethinking Mobile Block for Efficient Attention-based Models (EMO, ICCV 2023)",
    url="https://arxiv.org/abs/2301.01146",
    datamodule="bench.tasks.emo.data:ImageDataModule",
    fixture="bench.tasks.emo.fixture:fixture",
    datasets=("fashion-mnist",),
    ddp_batch="data.batch_size",
    primary="test/acc",
    higher_is_better=True,
    methods=(
        *(
            Method(n, METHOD, f"EMO-{n[4:].upper()}: iRMB stages, attention in stages 3-4", {"arch": n})
            for n in EMO
        ),
        Method(
            "mobilenetv2",
            METHOD,
            "MobileNetV2 (torchvision) at EMO-1M's parameters (width 0.7 at 10 classes: 1.21M vs 1.19M)",
            {"arch": "mobilenetv2"},
        ),
        Method(
            "mobilenetv2_flops",
            METHOD,
            "MobileNetV2 (torchvision) at EMO-1M's FLOPs (width 0.85: +2.7% at 64 px, -0.4% at 224)",
            {"arch": "mobilenetv2"},
        ),
        Method(
            "mobilevit_xxs",
            METHOD,
            "MobileViT-XXS (timm), a small attention model",
            {"arch": "mobilevit_xxs"},
        ),
    ),
    reported={
        **{
            n: {
                "imagenet_top1": acc,
                "params_M": LOGGED[n]["params"] / 1e6,
                "flops_G": LOGGED[n]["flops"] / 1e9,
            }
            for n, acc in zip(EMO, (71.5, 75.1, 78.4, 79.0), strict=True)
        },
        "mobilevit_xxs": {"imagenet_top1": 69.0, "params_M": 1.3, "flops_G": 0.4},
    },
    reported_note=(
        "ImageNet-1K top-1 (paper preset only; the cpu preset is Fashion-MNIST): the EMOs at 224 (the"
        " official logs), MobileViT-XXS at 256 (its own paper, as the EMO paper quotes it)"
    ),
    headline=("test/val_acc", "test/lr"),
    curve=("cost.params", "metrics.test/acc"),
    seed_varies=("data", "init", "order"),
)
