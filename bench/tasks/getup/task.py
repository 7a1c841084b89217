"""getup: Learning to Get Up (Tao, Wilson, Gou, van de Panne, SIGGRAPH 2022): SAC discovers get-up
motions with a strong character (stage 1), a strength curriculum adapts them to a weaker one
(stage 2), and a tracking policy reproduces the weak motions slowed down by kappa (stage 3)."""

from bench.task import Method, Relation, RunClaim, Task

METHOD = "bench.tasks.getup.method:GetUpMethod"

TASK = Task(
    name="getup",
    paper="Learning to Get Up (Tao, Wilson, Gou, van de Panne, SIGGRAPH 2022)",
    url="https://arxiv.org/abs/2205.00307",
    datamodule="bench.tasks.getup.data:GetUpData",
    primary="test/success_weak",
    higher_is_better=True,
    methods=(
        Method(
            "staged",
            METHOD,
            "stage 1 (strong, SAC) + stage 2 (strength curriculum) + stage 3 (slow-motion tracking)",
        ),
        Method("strong_only", METHOD, "stage 1 only: SAC at full strength (the shared stage-1 policy)"),
        Method(
            "weak_from_scratch", METHOD, "SAC at the curriculum's floor strength for the stage-1+2 budget"
        ),
    ),
    claims=(
        RunClaim(
            "strong_above_random",
            "the strong character's success rate is well above a random policy's (by checks.above_random)",
            ("strong_only",),
        ),
        RunClaim(
            "curriculum_lowers_strength",
            "the curriculum lowers the strength to <= checks.max_strength",
            ("staged",),
        ),
        RunClaim(
            "success_holds",
            "success at the reached strength stays >= checks.hold_ratio x the stage-1 policy's success "
            "at full strength",
            ("staged",),
        ),
        Relation(
            "weak_below_staged",
            "training from scratch at the floor strength succeeds less than the curriculum (seed means)",
            "test/success_weak",
            "staged",
            ">",
            "weak_from_scratch",
            presets=("paper",),
        ),
    ),
    reported={},
    reported_note="the paper reports motions, strength curves and success in figures and video (3-D "
    "humanoid, about 40% of full strength reached), no table to compare with",
)
