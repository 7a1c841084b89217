"""girl: GiRL, a game-theoretic perspective of generalization in RL (Yang et al., 2022): an agent
against an adversary reweighting the task distribution within eps of the nominal one, solved by
PSRO with a MAML best-response oracle and a few-shot (pick-then-adapt) test of the population.
Claims and their bounds live in the presets' ``claims:`` sections."""

from bench.task import Method, Task

METHOD = "bench.tasks.girl.method:GiRLMethod"

TASK = Task(
    name="girl",
    paper="A Game-Theoretic Perspective of Generalization in Reinforcement Learning (GiRL, 2022)",
    url="https://arxiv.org/abs/2208.03650",
    datamodule="bench.tasks.girl.data:TaskFamilyModule",
    primary="test/heldout_worst",
    higher_is_better=True,
    distributed=False,  # one PSRO/MAML loop of rollouts in one process: a sweep parallelizes runs
    headline=("test/worst", "test/nominal", "test/heldout_nominal", "test/heldout_rare"),
    methods=(
        Method(
            "girl",
            METHOD,
            "PSRO over P MAML best responses against an adversary within eps of p0, exact LP solver",
        ),
        Method("girl_rprd", METHOD, "GiRL with the paper's R-PRD as the meta-strategy solver"),
        Method("maml", METHOD, "first-order MAML on the nominal distribution (GiRL with eps = 0, P = 1)"),
        Method(
            "maml_reweighted",
            METHOD,
            "control: MAML on p0 shifted by eps toward the rare tasks, fixed (no game), GiRL's budget",
        ),
        Method(
            "maml_bestof",
            METHOD,
            "control: P MAML policies from fresh inits, each 1/P of the training, same pick-then-adapt",
        ),
        Method("multitask", METHOD, "multi-task policy gradient on p0 (no inner step), adapted at test"),
        Method("robust", METHOD, "GiRL with eps = 2: the adversary may put any distribution"),
    ),
    seed_varies=("init", "order"),
    seed_fixed={
        "data": "the task family (training goals, their nominal distribution, held-out goals) is the "
        "setting under test, built from the config alone; a seed draws the episodes on it"
    },
    reported={},
    reported_note="the paper reports learning curves on MuJoCo in figures, no table: GiRL above MAML. "
    "The cpu preset is a purpose-built in-sample robustness demonstration (2-D navigation with rare "
    "goals), not the paper's MuJoCo setting; the paper preset (HalfCheetah) is not yet shown to learn "
    "in its budget (docs/tasks/girl.md)",
)
