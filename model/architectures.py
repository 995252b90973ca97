"""The architecture table: id -> model class, and `make_decoder`, the one place a model is built.

An architecture is a Decoder subclass (model/decoder.py) whose class attributes and classmethods
say what the rest of the code needs to know about it: `name` (the id in
ModelConfig.architecture), `label`, `mask_kinds` and `takes_mask`, `refusal` (of an objective),
`num_params`, `train_flops_per_token`, `timing_mask` and `mask_label`. A new architecture is a
class and one `register_architecture` line; no other module tests an architecture's name.
"""

from flax import nnx

from model.config import ModelConfig
from model.decoder import Decoder
from model.encoder_decoder import EncoderDecoder

ARCHITECTURES: dict[str, type[Decoder]] = {}


def register_architecture(cls: type[Decoder]) -> type[Decoder]:
    """Adds `cls` to the table under `cls.name`; also a class decorator.

    A second class under a taken name is a ValueError: a subclass that kept its parent's name.
    """
    taken = ARCHITECTURES.get(cls.name)
    if taken is not None and taken is not cls:
        raise ValueError(
            f"Architecture {cls.name!r} is already {taken.__qualname__}; give "
            f"{cls.__qualname__} its own `name`"
        )
    ARCHITECTURES[cls.name] = cls
    return cls


register_architecture(Decoder)  # One stack over `BOS source SEP target`.
register_architecture(EncoderDecoder)  # An encoder over the source; a decoder that attends to it.


def architecture_of(cfg_or_name: ModelConfig | str) -> type[Decoder]:
    """The class of an architecture id, or of a config's `architecture`."""
    name = cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.architecture
    if name not in ARCHITECTURES:
        raise ValueError(
            f"Unknown model architecture {name!r}; the registered architectures are "
            f"{list(ARCHITECTURES)} (model/architectures.py)"
        )
    return ARCHITECTURES[name]


def check_model(cfg: ModelConfig, objective=None) -> None:
    """Raises a one-line ValueError if `cfg.architecture` is unknown, does not take
    `cfg.attention_mask_kind`, or (given an objective's record) does not train with it."""
    cls = architecture_of(cfg)
    if not cls.takes_mask(cfg.attention_mask_kind):
        reason = f" ({cls.mask_kinds_reason})" if cls.mask_kinds_reason else ""
        raise ValueError(
            f"An architecture={cls.name!r} model's attention_mask_kind must be one of "
            f"{cls.mask_kinds}{reason}, got {cfg.attention_mask_kind!r}"
        )
    if cfg.source_copy_id >= 0 and not cls.encodes_prompt:
        raise ValueError(
            f"model.source_copy_id copies the source into a decoder's input from its encoder's "
            f"prompt; an architecture={cls.name!r} model has no encoder (use encoder_decoder)"
        )
    refusal = None if objective is None else cls.refusal(objective)
    if refusal:
        raise ValueError(refusal)


def num_params(cfg: ModelConfig) -> int:
    """The parameter count of a model of `cfg` (embeddings included)."""
    return architecture_of(cfg).num_params(cfg)


def make_decoder(cfg: ModelConfig, seed: int = 0) -> Decoder:
    """A freshly initialised model of `cfg.architecture`, from a config and an integer seed."""
    check_model(cfg)
    return architecture_of(cfg)(cfg, rngs=nnx.Rngs(params=seed))
