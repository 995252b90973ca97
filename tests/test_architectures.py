"""model/architectures.py: the table, its one-line errors, each architecture's parameter and FLOP
counts against the module it builds, and an architecture registered by a test that
`make_decoder` builds and runs."""

import jax
import numpy as np
import pytest
from conftest import make_tiny_config
from flax import nnx

from model import (
    ARCHITECTURES,
    Decoder,
    EncoderDecoder,
    architecture_of,
    check_model,
    make_decoder,
    num_params,
    register_architecture,
)
from model.attention import CrossAttention, SelfAttention
from model.masks import MASK_KINDS
from objectives import OBJECTIVES, objective_of
from training import metrics

SEQUENTIAL_REFUSAL = (
    "train.objective='sequential' feeds one token at a time from BOS, but an encoder_decoder "
    "must encode the whole source first; use teacher_forcing."
)


def counted_params(model: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


class TiedHead(nnx.Module):
    """An LM head that is the token embedding, transposed."""

    def __init__(self, embed: nnx.Embed):
        self.embed = embed

    def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
        return self.embed.attend(x_BxTxD)


@pytest.fixture
def tied_decoder():
    """A decoder whose LM head is its token embedding, registered for the test only."""

    @register_architecture
    class TiedDecoder(Decoder):
        name = "tied_decoder"
        label = "decoder, tied head"
        mask_kinds = ("causal", "prefix")
        mask_kinds_reason = "a test's restriction"

        @classmethod
        def refusal(cls, objective):
            masks = objective.model_kind == "masked"
            return "a tied decoder is not trained with masks here" if masks else None

        def __init__(self, cfg, *, rngs):
            super().__init__(cfg, rngs=rngs)
            self.lm_head = TiedHead(self.token_embed)

        @classmethod
        def num_params(cls, cfg) -> int:
            return super().num_params(cfg) - (cfg.d_model + 1) * cfg.vocab_size

    yield TiedDecoder
    del ARCHITECTURES[TiedDecoder.name]


def test_the_table_maps_each_id_to_its_class():
    assert ARCHITECTURES == {"decoder": Decoder, "encoder_decoder": EncoderDecoder}
    for name, cls in ARCHITECTURES.items():
        assert cls.name == name and architecture_of(name) is cls
        assert architecture_of(make_tiny_config(architecture=name)) is cls
    assert [cls.label for cls in ARCHITECTURES.values()] == ["decoder", "encoder-decoder"]


def test_an_unknown_architecture_is_a_one_line_error_naming_the_known_ones():
    for call in (
        lambda: architecture_of("bogus"),
        lambda: check_model(make_tiny_config(architecture="bogus")),
        lambda: make_decoder(make_tiny_config(architecture="bogus")),
    ):
        with pytest.raises(ValueError, match=r"'bogus'.*\['decoder', 'encoder_decoder'\]") as e:
            call()
        assert "\n" not in str(e.value)


def test_a_second_class_under_a_taken_name_is_refused():
    class Renamed(Decoder):  # Kept its parent's name.
        pass

    with pytest.raises(ValueError, match="'decoder' is already Decoder"):
        register_architecture(Renamed)
    assert register_architecture(Decoder) is Decoder  # Registering again is harmless.


def test_the_decoder_takes_every_mask_and_objective():
    for kind in MASK_KINDS:
        for record in OBJECTIVES.values():
            check_model(make_tiny_config(attention_mask_kind=kind), record)
            assert Decoder.refusal(record) is None


def test_an_encoder_decoder_refuses_prefix_masks_and_the_sequential_objective():
    for kind in ("prefix", "prefix_full"):
        cfg = make_tiny_config(architecture="encoder_decoder", attention_mask_kind=kind)
        with pytest.raises(ValueError, match="its encoder already sees the whole source"):
            check_model(cfg)
        with pytest.raises(ValueError, match="its encoder already sees the whole source"):
            make_decoder(cfg)
    cfg = make_tiny_config(architecture="encoder_decoder")
    with pytest.raises(ValueError) as e:
        check_model(cfg, objective_of("sequential"))
    assert str(e.value) == SEQUENTIAL_REFUSAL
    assert EncoderDecoder.refusal(objective_of("sequential")) == SEQUENTIAL_REFUSAL
    for objective_id in ("teacher_forcing", "masked", "glancing"):
        check_model(cfg, objective_of(objective_id))


@pytest.mark.parametrize("architecture", ["decoder", "encoder_decoder"])
@pytest.mark.parametrize("length_head", [False, True])
def test_num_params_is_the_module_count(architecture, length_head):
    cfg = make_tiny_config(architecture=architecture, length_head=length_head, num_layers=3)
    model = make_decoder(cfg)
    assert type(model) is ARCHITECTURES[architecture]
    assert num_params(cfg) == type(model).num_params(cfg) == counted_params(model)


@pytest.mark.parametrize("architecture", ["decoder", "encoder_decoder"])
def test_train_flops_count_every_matmul_weight_and_attention_product(architecture):
    """6 x the kernels that every position runs through (not the length head, run once per row;
    not the embeddings, which are gathers) + 12 T D per attention module (Q.K^T and its use on V,
    forward and backward)."""
    cfg = make_tiny_config(architecture=architecture, length_head=True, num_layers=3)
    model = make_decoder(cfg)
    kernels = sum(
        module.kernel.size
        for path, module in model.iter_modules()
        if isinstance(module, nnx.Linear) and "length_head" not in path
    )
    attentions = sum(
        isinstance(module, SelfAttention | CrossAttention) for _, module in model.iter_modules()
    )
    T = 40
    expected = 6.0 * kernels + 12.0 * attentions * T * cfg.d_model
    assert type(model).train_flops_per_token(cfg, T) == expected
    assert metrics.train_flops_per_token(cfg, T) == expected


def test_timing_masks_and_report_labels():
    for kind in MASK_KINDS:
        assert Decoder.timing_mask(kind) == Decoder.mask_label(kind) == kind
        assert EncoderDecoder.timing_mask(kind) in EncoderDecoder.mask_kinds
    assert EncoderDecoder.timing_mask("prefix") == "causal"
    assert EncoderDecoder.timing_mask("prefix_full") == "full"
    assert EncoderDecoder.mask_label("causal") == "enc-dec, causal"


def test_a_registered_architecture_is_built_by_make_decoder_and_runs(tied_decoder):
    assert architecture_of("tied_decoder") is tied_decoder
    cfg = make_tiny_config(architecture="tied_decoder")
    model = make_decoder(cfg, seed=1)
    assert type(model) is tied_decoder
    assert num_params(cfg) == counted_params(model) < num_params(make_tiny_config())
    tokens_BxT = jax.random.randint(jax.random.key(0), (2, 7), 0, cfg.vocab_size)
    logits_BxTxV, _ = model(tokens_BxT)
    assert logits_BxTxV.shape == (2, 7, cfg.vocab_size)
    assert np.isfinite(np.asarray(logits_BxTxV)).all()
    assert model.lm_head.embed is model.token_embed  # One variable, counted once.
    with pytest.raises(ValueError, match=r"\('causal', 'prefix'\) \(a test's restriction\)"):
        make_decoder(make_tiny_config(architecture="tied_decoder", attention_mask_kind="full"))
    with pytest.raises(ValueError, match="not trained with masks"):
        check_model(cfg, objective_of("masked"))
