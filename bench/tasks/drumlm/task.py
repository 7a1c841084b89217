"""drumlm: "Language Models are Drummers" (Zhang & Callison-Burch, 2023): language models
fine-tuned on drum grooves written as text, judged by the structure of what they write."""

from bench.task import Method, Task

LM = "bench.tasks.drumlm.lm:LanguageModel"
REF = "bench.tasks.drumlm.method:Reference"
TASK = Task(
    name="drumlm",
    paper="Language Models are Drummers: Drum Composition with Natural Language Pre-Training "
    "(Zhang & Callison-Burch, AAAI 2023 workshop on Creative AI Across Modalities)",
    url="https://arxiv.org/abs/2301.01162",
    datamodule="bench.tasks.drumlm.data:GrooveDataModule",
    fixture="bench.tasks.drumlm.fixture:fixture",
    ddp_batch="data.batch_size",
    primary="test/stability_bars_gap",
    higher_is_better=False,
    methods=(
        Method(
            "chargpt",
            LM,
            "character GPT pretrained on English (pydoc topics), fine-tuned",
            {"family": "chargpt", "pretrained": True},
        ),
        Method(
            "chargpt_shuffled",
            LM,
            "control: the character GPT pretrained as chargpt on the same text with its characters "
            "shuffled (the characters' frequencies without the language), fine-tuned",
            {"family": "chargpt", "pretrained": True, "corpus": "shuffled"},
        ),
        Method(
            "chargpt_scratch",
            LM,
            "the same character GPT trained on grooves only",
            {"family": "chargpt", "pretrained": False},
        ),
        Method(
            "chargpt_scratch_long",
            LM,
            "the scratch GPT at its val plateau, given as many optimiser steps as chargpt's "
            "pretraining and fine-tuning together",
            {"family": "chargpt", "pretrained": False},
        ),
        Method(
            "smollm",
            LM,
            "SmolLM2-135M (GGUF, dequantised) fine-tuned with LoRA",
            {"family": "smollm", "pretrained": True},
        ),
        Method(
            "smollm_scratch",
            LM,
            "SmolLM2-135M's architecture from random weights",
            {"family": "smollm", "pretrained": False},
        ),
        Method("human", REF, "reference: the held-out human continuation", {"kind": "human"}),
        Method("repeat", REF, "reference: bar 2 of the prompt repeated", {"kind": "repeat"}),
        Method("random", REF, "reference: every cell a coin flip", {"kind": "random"}),
        Method(
            "random_density",
            REF,
            "reference: the real prompt, then hits at the training set's per-step, per-voice rates",
            {"kind": "density"},
        ),
        Method(
            "prompt_density",
            REF,
            "reference: the real prompt, then hits at the prompt's own per-step, per-voice rates "
            "(shrunk toward the training rates as fits the training grooves)",
            {"kind": "prompt_density"},
        ),
        Method(
            "repeat_mutate",
            REF,
            "reference: bar 2 of the prompt repeated, cells flipped at the training grooves' rate",
            {"kind": "repeat_mutate"},
        ),
    ),
    # test metrics are computed per rank (the human reference on rank 0's half of the test set,
    # fine-tuning tokens counted per rank: measured 2.5 vs 4.0 and 512 vs 1024 under DDP): one
    # process until they sync across ranks
    distributed=False,
    headline=("test/stability_bars", "test/bits_per_char"),
    seed_varies=("order",),
    seed_fixed={
        "data": "the grooves are generated once and split by data.generator.generator_seed (a "
        "cached stage), standing for the Groove MIDI Dataset's fixed train/validation/test split",
        "init": "the fine-tuned methods start from one pretrained model (pretrain.seed, cached), as "
        "the paper fine-tunes GPT-3's released weights; the scratch methods' random init does "
        "follow the run seed",
    },
    reported={},
    reported_note="the paper reports no table of numbers to compare at this scale: its claims are "
    "qualitative (GPT-3 davinci/ada grooves between repeat and random in stability and close to "
    "human; a Transformer from scratch only repeats), shown as per-groove stability plots",
)
