"""Token ids shared by every task: five special tokens, then the task's symbols (or bytes).

Ids 0..4 are reserved so that padding is 0 and every task agrees on BOS/SEP/EOS/MASK.
Synthetic symbol i is id FIRST_SYMBOL + i; text byte b is id FIRST_SYMBOL + b.
"""

import numpy as np

PAD = 0
BOS = 1
EOS = 2
SEP = 3
MASK = 4  # Only the non-AR (CMLM) objective feeds this token.
FIRST_SYMBOL = 5
NUM_BYTES = 256


def vocab_size(num_symbols: int) -> int:
    """Vocabulary size of a task with `num_symbols` ordinary symbols."""
    return FIRST_SYMBOL + num_symbols


def bytes_to_ids(text: bytes) -> np.ndarray:
    """Byte-level token ids (int32) of `text`, without specials."""
    return np.frombuffer(text, dtype=np.uint8).astype(np.int32) + FIRST_SYMBOL


def ids_to_bytes(ids: np.ndarray) -> bytes:
    """Bytes of the byte-level ids in `ids`; special tokens are dropped."""
    ids = np.asarray(ids)
    ids = ids[(ids >= FIRST_SYMBOL) & (ids < FIRST_SYMBOL + NUM_BYTES)]
    return (ids - FIRST_SYMBOL).astype(np.uint8).tobytes()


def render(ids, num_symbols: int) -> str:
    """Readable text of token ids: bytes for byte-level tasks, letters for small symbol sets."""
    special = {PAD: "·", BOS: "^", EOS: "$", SEP: "|", MASK: "_"}
    if num_symbols == NUM_BYTES:
        return "".join(
            special[i] if i in special else bytes([i - FIRST_SYMBOL]).decode("latin-1")
            for i in map(int, ids)
        )
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(
        special.get(i)
        or (letters[i - FIRST_SYMBOL] if i - FIRST_SYMBOL < len(letters) else f"<{i}>")
        for i in map(int, ids)
    )
