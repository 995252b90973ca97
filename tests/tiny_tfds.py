"""A tiny English -> Spanish TFDS translation set (number words), built in a temporary folder for
the tests that train and distil a translation model: `prepare(data_dir)`, then data config
task="tfds_translation", tfds_name=NAME, data_dir=data_dir, source_key="en", target_key="es"."""

import itertools

import tensorflow_datasets as tfds

NAME = "tiny_en_es"
WORDS = {"one": "uno", "two": "dos", "three": "tres", "four": "cuatro", "five": "cinco"}


def _pairs(count: int, offset: int) -> list[tuple[str, str]]:
    """`count` (English, Spanish) phrases of 1-3 number words, from the `offset`-th on."""
    phrases = [words for length in (1, 2, 3) for words in itertools.product(WORDS, repeat=length)]
    chosen = [phrases[(offset + 7 * i) % len(phrases)] for i in range(count)]
    return [(" ".join(words), " ".join(WORDS[w] for w in words)) for words in chosen]


PAIRS = {"train": _pairs(48, 0), "test": _pairs(12, 3)}


class TinyEnEs(tfds.core.GeneratorBasedBuilder):
    """Number words: "two five" -> "dos cinco"."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.Translation(languages=("en", "es"))
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(pairs) for split, pairs in PAIRS.items()}

    def _generate_examples(self, pairs):
        for i, (en, es) in enumerate(pairs):
            yield i, {"en": en, "es": es}


def prepare(data_dir: str) -> str:
    """Writes the set (array_record, no TensorFlow needed) under `data_dir`; returns it."""
    TinyEnEs(data_dir=data_dir, file_format="array_record").download_and_prepare()
    return data_dir
