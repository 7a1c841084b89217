"""getup: Learning to Get Up (Tao, Wilson, Gou, van de Panne, SIGGRAPH 2022): SAC discovers get-up
motions with a strong character (stage 1), a strength curriculum adapts them to a weaker one
(stage 2), and a tracking policy reproduces the weak motions slowed down by kappa (stage 3)."""

from bench.task import Method, Task

METHOD = "bench.tasks.getup.method:GetUpMethod"

TASK = Task(
    name="getup",
    paper="Learning to Get Up (Tao, Wilson, Gou, van de Panne, SIGGRAPH 2022)",
    url="https://arxiv.org/abs/2205.00307",
    datamodule="bench.tasks.getup.data:GetUpData",
    primary="test/success",
    higher_is_better=True,
    methods=(
        Method(
            "staged",
            METHOD,
            "stage 1 (strong, SAC) + stage 2 (strength curriculum) + stage 3 (slow-motion tracking; "
            "smoke and paper presets only)",
        ),
        Method("strong_only", METHOD, "stage 1 only: SAC at full strength (the shared stage-1 policy)"),
        Method(
            "weak_from_scratch",
            METHOD,
            "SAC from scratch at the strength the seed's curriculum reached, for the stage-1+2 budget",
        ),
        Method(
            "scratch_at_60",
            METHOD,
            "SAC from scratch at a fixed 60% of full strength, for the stage-1+2 budget (the official "
            "reward-curriculum figure's strongest strength at which from-scratch SAC stays flat)",
        ),
    ),
    figures=("rollout.gif",),
    headline=("test/success", "test/strength", "test/stage1_success"),
    distributed=False,
    reported={},
    reported_note="the paper reports motions, strength curves and success in figures and video (3-D "
    "humanoid; the official torque-limit curve levels off near 60% of full strength), no table to "
    "compare with",
)
