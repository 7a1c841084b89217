"""What a reliant run's seed draws (bench/seeds.py): the split (training and validation nodes; the
test nodes are ``data.test_seed``'s, the same for every seed), and the student's start: its
initial weights and proxy, and the soft labels of the teacher it distils, trained from the run's
seed. The order is fixed by design (``Task.seed_fixed``): the training loader's epochs are
digested to show it."""

from __future__ import annotations

from bench.seeds import batches, build, digest, set_up


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    graphs = datamodule.graphs
    module.plain = graphs  # what a Trainer's datamodule hands the module's setup
    module.setup("fit")
    teachers = {name: getattr(module, f"soft_{name}") for name in graphs}
    return {
        "data": digest(
            {n: [g.x, g.y, g.sens, g.edge_index, g.train, g.val, g.test] for n, g in graphs.items()}
        ),
        "init": digest(module.state_dict(), teachers),
        "order": digest(batches(datamodule.train_dataloader())),
    }
