"""Prepares TFDS datasets once, in the array_record format data/ reads.

The Bible corpus (data/bible.py) is prepared offline and without TensorFlow, from Debian's SWORD
modules (about 5 s a config: bible/en-es took 4.99 s on the 2-core CPU, 2026-11-26; a progress bar
counts the verses read):

    sudo apt-get install sword-text-web sword-text-sparv sword-text-kjv
    python scripts/prepare_data.py --name=bible/en-es --name=bible/kjv-web

TFDS's own datasets need internet and TensorFlow (their builders read their downloads through
tf.io.gfile); reading the prepared folder later needs neither. On a machine with internet:

    pip install -r requirements-data.txt
    python scripts/prepare_data.py --name=tiny_shakespeare --data_dir=/path/to/tensorflow_datasets

(repeat --name for more: lm1b, wmt14_translate/de-en, ...), then copy that folder to the training
machine and pass --config.data.data_dir=/path/to/it (or leave data.data_dir empty and put the
folder at $TFDS_DATA_DIR or ~/tensorflow_datasets).
"""

import difflib
import importlib
import os
import sys

# Run as `python scripts/prepare_data.py`: the repository root holds launch.py.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow_datasets as tfds  # noqa: E402
from absl import flags  # noqa: E402

import launch  # noqa: E402
from data import bible, tfds_data  # noqa: E402  (bible registers bible/en-es and bible/kjv-web)

_NAMES = flags.DEFINE_multi_string(
    "name",
    ["bible/en-es"],  # Offline; the corpus of experiments/translate.py and text.py.
    "TFDS dataset[/config] to prepare: "
    + ", ".join(f"{bible.Bible.name}/{config.name}" for config in bible.Bible.BUILDER_CONFIGS)
    + " (offline), lm1b, wmt14_translate/de-en, ...",
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir",
    "",
    "Folder to write to; '' is TFDS's default ($TFDS_DATA_DIR or ~/tensorflow_datasets).",
)


def prepare(name: str, data_dir: str) -> str:
    """Downloads (except bible/...) and prepares `name` as array_record under `data_dir`; returns
    its folder."""
    # TFDS registers the text and translation builders (wmt14_translate...) only once imported.
    for module in ("tensorflow_datasets.text", "tensorflow_datasets.translate"):
        importlib.import_module(module)
    try:
        builder = tfds.builder(name, data_dir=os.path.expanduser(data_dir) or None)
    except tfds.core.registered.DatasetNotFoundError as error:
        known = tfds.core.registered.list_imported_builders()
        close = difflib.get_close_matches(name.split("/")[0], known, n=3)
        raise ValueError(
            f"--name={name} is not a TFDS dataset"
            + (f"; did you mean {' or '.join(close)}?" if close else ".")
        ) from error
    except ValueError as error:  # TFDS's many-line error for a config the family lacks.
        raise tfds_data.missing_config(name, "--name") or error from error
    builder.download_and_prepare(file_format="array_record")
    return str(builder.data_dir)


def main(argv: list[str]) -> None:
    del argv  # launch.run refuses positional arguments.
    for name in _NAMES.value:
        print(f"{name}: prepared in {prepare(name, _DATA_DIR.value)}")


if __name__ == "__main__":
    launch.run(main)
