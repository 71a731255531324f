"""Names for runs started without one, as MLflow gives them: `adjective-noun-number`
(`brave-otter-417`), easy to tell apart and to say aloud."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "amber",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fancy",
    "gentle",
    "glad",
    "honest",
    "keen",
    "lively",
    "lucky",
    "merry",
    "nimble",
    "polite",
    "quick",
    "quiet",
    "rare",
    "sharp",
    "silent",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
)
_NOUNS = (
    "ant",
    "bass",
    "bear",
    "crab",
    "crane",
    "deer",
    "dove",
    "eel",
    "finch",
    "fox",
    "gnu",
    "hare",
    "hawk",
    "heron",
    "ibis",
    "jay",
    "koala",
    "lark",
    "lynx",
    "mole",
    "moth",
    "newt",
    "otter",
    "owl",
    "panda",
    "quail",
    "seal",
    "snail",
    "swan",
    "trout",
    "wolf",
    "yak",
)


def random_run_name() -> str:
    r = random.SystemRandom()
    return f"{r.choice(_ADJECTIVES)}-{r.choice(_NOUNS)}-{r.randrange(1000)}"
