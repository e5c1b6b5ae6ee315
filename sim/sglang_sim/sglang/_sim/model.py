"""The simulated model and tokenizer: whitespace tokens, deterministic reply words, config.json facts."""

import json
import os
import random
import zlib

# Words of the simulated replies; the first word always says what this is.
_VOCAB = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
    "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est"
).split()


def count_tokens(text):
    """The simulated tokenizer: one token per whitespace-separated word."""
    if not text:
        return 0
    return len(text.split())


def natural_length(prompt_text):
    """Length (16..64 words) the simulated model 'wants' to answer with."""
    return 16 + zlib.crc32(prompt_text.encode("utf-8", "replace")) % 49


def simulated_words(prompt_text, n):
    """n deterministic words for a prompt; the first always reads 'simulated'."""
    if n <= 0:
        return []
    rng = random.Random(zlib.crc32(prompt_text.encode("utf-8", "replace")))
    return ["simulated"] + [rng.choice(_VOCAB) for _ in range(n - 1)]


def read_model_config(model_path):
    if not model_path.startswith("/") or not os.path.isdir(model_path):
        return {}
    try:
        with open(os.path.join(model_path, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        return cfg if isinstance(cfg, dict) else {}
    except (OSError, ValueError):
        return {}
