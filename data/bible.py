"""The Bible as an offline parallel corpus: a TFDS builder over Debian's SWORD Bible modules.

Configs (features are plain strings; `reference` names the verse, e.g. "John 3:16"):
  - `bible/en-es`: `en` (World English Bible, module engWEB2015eb) -> `es` (Reina-Valera 1909,
    spaRV1909eb).
  - `bible/kjv-web`: `kjv` (King James Version, engKJV2006eb) -> `web` (World English Bible): a
    style-transfer pair, archaic English to modern English.

Prepare once, offline and without TensorFlow (about 5 s), then train with
data.tfds_name="bible/en-es", data.source_key="en", data.target_key="es":

    sudo apt-get install sword-text-web sword-text-sparv sword-text-kjv
    python scripts/prepare_data.py --name=bible/en-es --name=bible/kjv-web

The modules are read from $SWORD_PATH, or /usr/share/sword (where the Debian packages put them).

Text: each verse's OSIS markup is removed here (pysword's own cleaner glues words together, e.g.
"bornSon" in John 3:16): footnotes and cross-references go with their content, as do section
headings and speaker labels; a psalm's canonical title is kept, at the start of its verse 1,
where the Reina-Valera has it too; other tags are stripped, entities unescaped and whitespace
collapsed. Verses are paired by (book, chapter, verse) over the books both modules hold (the WEB's
deuterocanon has no partner). The versifications differ in places (the Reina-Valera numbers some
chapters as the Hebrew does: Num 12:16 is its 13:1), so a chapter with a missing or empty verse on
either side is dropped, and so is the chapter after it, which the moved verse shifts: of the
31,077 en-es verses with text on both sides, 30,142 remain (35 chapters dropped), and of kjv-web's
31,095, 30,728 (12 chapters).

Splits are by book, so that no held-out verse has a near copy in training; the held-out books have
no close parallel elsewhere in the Bible (not the Gospels, nor Samuel/Kings/Chronicles). Verses
per config after alignment (2026-11-26; pysword 0.2.8; Debian's sword-text-web 426.0,
sword-text-sparv 2.60, sword-text-kjv 14.3):

    split       books (verses)                                           en-es   kjv-web
    validation  Ecclesiastes 222, Daniel 357, Hebrews 303                    882       882
    test        Lamentations 154, Amos 146, Zechariah 211, 1 Corinthians 437 948       948
    train       the other 59 books                                         28,312    28,898

A verse is about 130 bytes (en 128, es 126, kjv 132, web 128; at most 544), or 32-34 pieces of a
4000-piece SentencePiece model (data.tokenizer="sentencepiece"). So at data.seq_len=256 only 56%
of en-es train pairs fit as bytes (the rest are redrawn, biasing towards short verses), and 100%
as pieces; at seq_len=128, 96% fit as pieces.
"""

import dataclasses
import functools
import html
import os
import re
from collections.abc import Iterator

import tensorflow_datasets as tfds
from pysword.modules import SwordModules
from tqdm import tqdm

DEFAULT_SWORD_PATH = "/usr/share/sword"
INSTALL_COMMAND = "sudo apt-get install sword-text-web sword-text-sparv sword-text-kjv"
VALIDATION_BOOKS = ("Eccl", "Dan", "Heb")  # OSIS names.
TEST_BOOKS = ("Lam", "Amos", "Zech", "1Cor")

Reference = tuple[str, int, int]  # (OSIS book, chapter, verse).


@dataclasses.dataclass(eq=False)
class BibleConfig(tfds.core.BuilderConfig):
    """A pair of SWORD modules: (feature name, module name) of the source, then the target."""

    sides: tuple[tuple[str, str], ...] = ()


class Bible(tfds.core.GeneratorBasedBuilder):
    """Verse-aligned pairs of two SWORD Bible modules; see the module docstring."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        BibleConfig(
            name="en-es",
            description="World English Bible -> Reina-Valera 1909.",
            sides=(("en", "engWEB2015eb"), ("es", "spaRV1909eb")),
        ),
        BibleConfig(
            name="kjv-web",
            description="King James Version -> World English Bible.",
            sides=(("kjv", "engKJV2006eb"), ("web", "engWEB2015eb")),
        ),
    ]

    def __init__(self, *, books: tuple[str, ...] = (), file_format="array_record", **kwargs):
        """`books` (OSIS names, e.g. ("John", "Lam")): prepare only those, for tests."""
        self._books = tuple(books)
        super().__init__(file_format=file_format, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        # Built directly: tfds.core.DatasetInfo.from_configs needs a dataset folder with
        # metadata files, which this single-file builder does not have.
        names = [name for name, _ in self.builder_config.sides]
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict({**dict.fromkeys(names, text), "reference": text}),
            supervised_keys=tuple(names),
            homepage="https://crosswire.org/sword/",
        )

    def _split_generators(self, dl_manager) -> dict:
        del dl_manager  # Nothing is downloaded.
        pairs = read_pairs(self.builder_config.sides, self._books)
        by_split = {"train": [], "validation": [], "test": []}
        for pair in pairs:
            by_split[split_of(pair[0][0])].append(pair)
        # A slice of books may leave a split empty, which TFDS refuses to write.
        return {split: self._generate_examples(rows) for split, rows in by_split.items() if rows}

    def _generate_examples(self, pairs) -> Iterator[tuple[str, dict]]:
        for (book, chapter, verse), reference, texts in pairs:
            yield f"{book}.{chapter}.{verse}", {**texts, "reference": reference}


def split_of(book: str) -> str:
    """The split that holds the verses of `book` (an OSIS name)."""
    if book in VALIDATION_BOOKS:
        return "validation"
    return "test" if book in TEST_BOOKS else "train"


def sword_path() -> str:
    """The SWORD folder (the one holding mods.d/): $SWORD_PATH, or Debian's /usr/share/sword."""
    return os.environ.get("SWORD_PATH") or DEFAULT_SWORD_PATH


def open_modules(names: list[str]) -> dict:
    """The pysword bibles of the modules `names`, or a one-line error naming the packages."""
    path = sword_path()
    modules = SwordModules(path)
    try:
        found = modules.parse_modules()
    except FileNotFoundError:
        found = {}
    missing = [name for name in names if name not in found]
    if missing:
        raise FileNotFoundError(
            f"SWORD module(s) {', '.join(missing)} not found in {path} ($SWORD_PATH, default "
            f"{DEFAULT_SWORD_PATH}); install them with `{INSTALL_COMMAND}`."
        )
    bibles = {}
    for name in names:
        bible = modules.get_bible_from_module(name)
        # Why: pysword decompresses a module's whole book block again for every verse it reads,
        # which makes a pass over one module take 49 s (spaRV1909eb) instead of under a second.
        if hasattr(bible, "_decompressed_text"):
            bible._decompressed_text = functools.lru_cache(maxsize=4)(bible._decompressed_text)
        bibles[name] = bible
    return bibles


def read_pairs(
    sides: tuple[tuple[str, str], ...], books: tuple[str, ...] = ()
) -> list[tuple[Reference, str, dict[str, str]]]:
    """(reference, "Book C:V", {feature: text}) of each aligned verse, in canonical order."""
    bibles = open_modules([module for _, module in sides])
    structures = [_books_of(bibles[module]) for _, module in sides]
    common = [book for book in structures[0] if all(book in other for other in structures[1:])]
    if books:
        unknown = sorted(set(books) - set(common))
        if unknown:
            raise ValueError(f"Unknown books {unknown}; the OSIS names here are {common}.")
        common = [book for book in common if book in books]
    total = sum(sum(s[book].chapter_lengths) for s in structures for book in common)
    texts = []
    with tqdm(total=total, unit=" verses", desc="Reading SWORD modules") as progress:
        for (_, module), structure in zip(sides, structures, strict=True):
            texts.append(_read_verses(bibles[module], structure, common, progress))
    names = [name for name, _ in sides]
    book_names = structures[0]
    return [
        (ref, f"{book_names[ref[0]].name} {ref[1]}:{ref[2]}", dict(zip(names, pair, strict=True)))
        for ref, pair in align(texts)
    ]


def _books_of(bible) -> dict:
    """OSIS name -> pysword book structure, in canonical order."""
    return {
        book.osis_name: book
        for testament in bible.get_structure().get_books().values()
        for book in testament
    }


def _read_verses(bible, structure: dict, books: list[str], progress) -> dict[Reference, str]:
    verses = {}
    for book in books:
        for chapter in range(1, structure[book].num_chapters + 1):
            raw = bible.get_iter(books=[book], chapters=[chapter], clean=False)
            for verse, text in enumerate(raw, start=1):
                verses[(book, chapter, verse)] = clean_osis(text)
                progress.update()
    return verses


def align(texts: list[dict[Reference, str]]) -> list[tuple[Reference, tuple[str, ...]]]:
    """The verses every side has, less the chapters with a gap and the chapter after each."""
    everywhere = [ref for ref in texts[0] if all(ref in side for side in texts[1:])]
    gaps = {
        ref[:2]
        for side in texts
        for ref in side
        if not all(other.get(ref) for other in texts)  # Missing or empty somewhere.
    }
    dropped = gaps | {(book, chapter + 1) for book, chapter in gaps}
    return [
        (ref, tuple(side[ref] for side in texts)) for ref in everywhere if ref[:2] not in dropped
    ]


_SOFT = "\x00"  # A removed element: a space, unless punctuation follows (see clean_osis).
_BOOK_END = re.compile(r'<div\b(?=[^>]*\beID=)[^>]*\btype="book"[^>]*/>.*', re.S)
_PREVERSE = re.compile(
    r'<div\b[^>]*subType="x-preverse"[^>]*\bsID="([^"]+)"[^>]*/>(.*?)<div\b[^>]*\beID="\1"[^>]*/>',
    re.S,
)
_CANONICAL_TITLE = re.compile(r'<title\b[^>]*\bcanonical="true"[^>]*>(.*?)</title>', re.S)
_DROPPED = re.compile(r"<(note|title|speaker)\b[^>]*>.*?</\1>", re.S)
# Words that the Reina-Valera tags separately, with no space between: "allí</w><transChange ..."
_WORD_JOINT = re.compile(r"</w>(?=<transChange\b)|</transChange>(?=<w\b)")
_TAG = re.compile(r"<[^>]*>")
_SOFT_BEFORE_CLOSER = re.compile(r"\s*\x00[\s\x00]*(?=[,.;:!?)\]’”»]|$)")
_SOFT_AFTER_OPENER = re.compile(r"(?<=[(\[‘“¿¡«])[\s\x00]*\x00")


def clean_osis(text: str) -> str:
    """The plain text of one verse of OSIS markup (see the module docstring)."""
    text = _BOOK_END.sub("", text)  # The WEB's last verse carries its glossary.
    text = _PREVERSE.sub(
        lambda match: _SOFT.join(["", *_CANONICAL_TITLE.findall(match.group(2)), ""]), text
    )
    text = _DROPPED.sub(_SOFT, text)
    text = _WORD_JOINT.sub(lambda match: match.group(0) + _SOFT, text)
    text = html.unescape(_TAG.sub("", text)).replace("¶", " ")  # The KJV's paragraph marks.
    text = _SOFT_AFTER_OPENER.sub("", _SOFT_BEFORE_CLOSER.sub("", text))
    return " ".join(text.replace(_SOFT, " ").split())


def prepare(data_dir: str, config: str = "en-es", books: tuple[str, ...] = ()) -> Bible:
    """Prepares bible/`config` in `data_dir` (only `books`, if given) and returns its builder."""
    builder = Bible(config=config, data_dir=data_dir, books=books)
    builder.download_and_prepare()
    return builder
