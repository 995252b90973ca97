"""Synthetic seq2seq tasks, generated on the fly with vectorised numpy.

Every row is `BOS source SEP target EOS` (see data/batching.py), with symbol i as token id
FIRST_SYMBOL + i and a source length n drawn uniformly from [min_len, max_len]. The built-in
tasks (copy, reverse, sort, addition, two_alphabets; data/synthetic/builtin.py) and the random
task that is every task's control (data/synthetic/task.py) are described where they are made.

Each task is a `SyntheticKind` record: its name, its generator (uniform symbols and lengths in,
source and target rows out), whether it preserves length, its alphabets, its shortest seq_len
and, for a multi-modal task, its grader. `BUILT_IN` lists the built-in records; data/__init__.py
registers each with `data.register_synthetic`, and a new synthetic task is one record and one
such call (tests/test_synthetic.py registers one).

A batch is a pure function of (seed, split, step): its generator is seeded by exactly those. The
whole global batch is generated and each process keeps its rows, so the union over processes
is the single-process batch whatever process_count is (cheap: a batch of 256 takes ~0.1 ms).
"""

from data.synthetic.builtin import ADDITION, BUILT_IN, COPY, REVERSE, SORT, TWO_ALPHABETS
from data.synthetic.task import (
    OUTCOMES,
    RANDOM,
    Generator,
    Grader,
    Rows,
    SyntheticKind,
    SyntheticTask,
    random_control,
    seq2seq_min_seq_len,
)

__all__ = [
    "ADDITION",
    "BUILT_IN",
    "COPY",
    "OUTCOMES",
    "RANDOM",
    "REVERSE",
    "SORT",
    "TWO_ALPHABETS",
    "Generator",
    "Grader",
    "Rows",
    "SyntheticKind",
    "SyntheticTask",
    "random_control",
    "seq2seq_min_seq_len",
]
