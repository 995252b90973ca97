"""data/bible.py: OSIS markup is removed without gluing words, versification gaps drop chapters,
and a slice of the real SWORD modules (John, Ecclesiastes, Lamentations) prepares into aligned,
clean, deterministic splits, disjoint by book. The tests that read the modules skip, naming the
Debian packages, where those are not installed."""

import pytest
import tensorflow_datasets as tfds

from data import bible

BOOKS = ("John", "Eccl", "Lam")  # A train, a validation and a test book.


@pytest.fixture(scope="module")
def sword_modules():
    configs = bible.Bible.BUILDER_CONFIGS
    try:
        bible.open_modules(list(dict.fromkeys(m for c in configs for _, m in c.sides)))
    except FileNotFoundError as error:
        pytest.skip(str(error))


def read_all(data_dir: str, config: str) -> dict[str, list[dict[str, str]]]:
    builder = tfds.builder(f"bible/{config}", data_dir=data_dir)
    rows = {}
    for split in builder.info.splits:
        source = builder.as_data_source(split=split)
        records = source.__getitems__(list(range(len(source))))
        rows[split] = [{key: value.decode() for key, value in r.items()} for r in records]
    return rows


@pytest.fixture(scope="module")
def en_es(sword_modules, tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("bible"))
    bible.prepare(data_dir, "en-es", books=BOOKS)
    return data_dir


def test_markup_goes_without_gluing_words():
    note = '<note placement="foot"><reference type="annotateRef">3:16 </reference>Greek</note>'
    assert bible.clean_osis(f"<w>only</w> born</q>{note}<q><w>Son</w>, that") == (
        "only born Son, that"
    )
    assert bible.clean_osis(f"the <w>world</w>{note}, and &amp; ¶ more ") == "the world, and & more"
    assert bible.clean_osis("<w>hay allí</w><transChange>también</transChange><w>bdelio</w>") == (
        "hay allí también bdelio"
    )
    assert bible.clean_osis("preguntándo<transChange>le</transChange>, y") == "preguntándole, y"
    assert bible.clean_osis("<w>give</w>n.") == "given."
    preverse = (
        '<div type="x-milestone" subType="x-preverse" sID="pv1"/><title type="psalm" '
        'canonical="true">A Psalm by David.</title> <speaker>Beloved</speaker><div '
        'type="x-milestone" subType="x-preverse" eID="pv1"/>Yahweh, hear me.'
        '<title type="section">Heading</title>'
    )
    assert bible.clean_osis(preverse) == "A Psalm by David. Yahweh, hear me."
    end = 'Amen. <div eID="x" osisID="Rev" type="book"/> <div type="glossary"/>Glossary...'
    assert bible.clean_osis(end) == "Amen."


def test_a_gap_drops_its_chapter_and_the_next():
    english = {("Num", 12, 15): "a", ("Num", 12, 16): "b", ("Num", 13, 1): "c", ("Num", 14, 1): "d"}
    spanish = {("Num", 12, 15): "A", ("Num", 12, 16): "", ("Num", 13, 1): "B", ("Num", 14, 1): "D"}
    assert bible.align([english, spanish]) == [(("Num", 14, 1), ("d", "D"))]


def test_a_missing_module_names_the_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("SWORD_PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        bible.prepare(str(tmp_path / "tfds"), "en-es", books=("Jude",))
    message = str(error.value)
    assert "\n" not in message and str(tmp_path) in message and "$SWORD_PATH" in message
    assert "apt-get install sword-text-web sword-text-sparv sword-text-kjv" in message


def test_slice_is_aligned_and_clean(en_es):
    rows = read_all(en_es, "en-es")
    by_reference = {row["reference"]: row for split in rows.values() for row in split}
    john_3_16 = by_reference["John 3:16"]
    assert john_3_16["en"].startswith("For God so loved the world, that he gave his only born Son")
    assert john_3_16["es"].startswith("Porque de tal manera amó Dios al mundo, que ha dado á su")
    assert by_reference["Lamentations 1:1"]["es"].startswith("¡CÓMO está sentada sola la ciudad")
    assert by_reference["Ecclesiastes 1:2"]["en"].startswith("“Vanity of vanities,” says the")
    for row in by_reference.values():
        for text in (row["en"], row["es"]):
            assert text and text == " ".join(text.split())
            assert not any(char in text for char in "<>&\x00¶"), text
    assert "bornSon" not in john_3_16["en"]


def test_splits_are_disjoint_by_book_and_deterministic(en_es, tmp_path):
    rows = read_all(en_es, "en-es")
    books = {split: {row["reference"].rsplit(" ", 1)[0] for row in r} for split, r in rows.items()}
    assert books == {"train": {"John"}, "validation": {"Ecclesiastes"}, "test": {"Lamentations"}}
    assert {split: len(r) for split, r in rows.items()} == {
        "train": 879,
        "validation": 222,
        "test": 154,
    }
    bible.prepare(str(tmp_path), "en-es", books=BOOKS)
    assert read_all(str(tmp_path), "en-es") == rows


def test_kjv_web_pairs_two_englishes(sword_modules, tmp_path):
    bible.prepare(str(tmp_path), "kjv-web", books=("Lam",))
    (row,) = [
        r
        for r in read_all(str(tmp_path), "kjv-web")["test"]
        if r["reference"] == "Lamentations 3:22"
    ]
    assert row["kjv"].startswith("It is of the LORD’s mercies that we are not consumed")
    assert row["web"].startswith("It is because of Yahweh’s loving kindnesses that we are not")


def test_an_unknown_book_is_named(sword_modules):
    with pytest.raises(ValueError, match=r"Unknown books \['Jhn'\]; the OSIS names here are"):
        bible.read_pairs(bible.Bible.BUILDER_CONFIGS[0].sides, books=("John", "Jhn"))
