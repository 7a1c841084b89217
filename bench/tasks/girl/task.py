"""girl: GiRL, a game-theoretic perspective of generalization in RL (Yang et al., 2022): an agent
against an adversary reweighting the task distribution within eps of the nominal one, solved by
PSRO with a MAML best-response oracle, R-PRD meta-strategies and few-shot testing of the population."""

from bench.task import Method, Relation, RunClaim, Task

METHOD = "bench.tasks.girl.method:GiRLMethod"
GAME = ("girl", "robust")

TASK = Task(
    name="girl",
    paper="A Game-Theoretic Perspective of Generalization in Reinforcement Learning (GiRL, 2022)",
    url="https://arxiv.org/abs/2208.03650",
    datamodule="bench.tasks.girl.data:TaskFamilyModule",
    primary="test/worst",
    higher_is_better=True,
    methods=(
        Method("girl", METHOD, "PSRO over P MAML best responses, adversary by R-PRD within eps of p0"),
        Method("maml", METHOD, "first-order MAML on the nominal distribution (GiRL with eps = 0, P = 1)"),
        Method(
            "maml_bestof",
            METHOD,
            "control: P MAML policies from fresh inits, each 1/P of the budget, same test protocol",
        ),
        Method("multitask", METHOD, "multi-task policy gradient on p0 (no inner step), adapted at test"),
        Method("robust", METHOD, "GiRL with a large eps: the adversary may put any distribution"),
    ),
    claims=(
        RunClaim("rprd_in_ball", "every R-PRD output lies in the simplex and within eps (L1) of p0", GAME),
        RunClaim("rprd_eps0_is_p0", "R-PRD with eps = 0 returns p0 on the run's payoff matrix", GAME),
        RunClaim(
            "rprd_matches_lp",
            "R-PRD on the run's final payoff matrix reaches scipy's LP minimax value (gap / payoff range)",
            GAME,
        ),
        Relation(
            "worst_ge_maml",
            "GiRL's worst-case adapted return within eps >= MAML's (seed means, equal sample budget)",
            "test/worst",
            "girl",
            ">=",
            "maml",
        ),
        Relation(
            "uniform_within_10pct",
            "GiRL's uniform-task adapted return at most 10% below MAML's (returns are <= 0: >= 1.1 x MAML)",
            "test/uniform",
            "girl",
            ">=",
            "maml",
            scale=1.1,
        ),
        Relation(
            "worst_ge_control",
            "GiRL's worst case >= the MAML best-of-P control (same split budget and pick rule)",
            "test/worst",
            "girl",
            ">=",
            "maml_bestof",
        ),
    ),
    reported={},
    reported_note="the paper reports learning curves on MuJoCo (HalfCheetah, Ant, ...) in figures, "
    "no table: GiRL above MAML in worst-case and held-out returns (paper preset only)",
)
