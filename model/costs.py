"""What a decoder-shaped architecture costs: its parameters and the FLOPs of a train step,
for the report, the MFU of the log line and the learning curve's compute axis. `Decoder`
(model/decoder.py) takes them as a mixin; an architecture with other stacks overrides them
(model/encoder_decoder.py), and an objective that runs the model other than once over each row
counts its own (`Objective.train_flops`).
"""

from typing import ClassVar

from model.block import Block
from model.config import ModelConfig


class DecoderCosts:
    """The cost classmethods of one stack of `num_layers` blocks with embeddings and an LM head;
    they read the architecture's `cross_attention` and `attention_stacks` (model/decoder.py)."""

    cross_attention: ClassVar[bool]
    attention_stacks: ClassVar[int]

    @classmethod
    def num_params(cls, cfg: ModelConfig) -> int:
        """Parameter count (embeddings included), for the report; the module's own count."""
        d, v = cfg.d_model, cfg.vocab_size
        blocks = cfg.num_layers * Block.num_params(cfg, cls.cross_attention)
        length_head = (d + 1) * (cfg.max_len + 1) if cfg.length_head else 0
        return (v + cfg.max_len) * d + blocks + 2 * d + (d * v + v) + length_head

    @classmethod
    def matmul_params(cls, cfg: ModelConfig) -> int:
        """N: the weights of the matmuls every token position runs through (all but the
        embeddings, which are gathers, the biases and norms, and the length head, run once
        per row)."""
        blocks = cfg.num_layers * Block.matmul_params(cfg, cls.cross_attention)
        return blocks + cfg.d_model * cfg.vocab_size

    @classmethod
    def train_flops_per_token(cls, cfg: ModelConfig, seq_len: int) -> float:
        """Forward + backward FLOPs per token position: 6 N + 12 A L T D.

        6 = 2 (multiply-add) x 3 (forward, then backward for activations and for weights), on
        N = `matmul_params` (Kaplan et al. 2020; PaLM, appendix B). The second term is each of
        the A = `attention_stacks` attention products per layer: Q.K^T and its use on V, 2
        matmuls of 2 T D FLOPs per token, times 3. Masked-out entries count: XLA computes the
        full T x T product.
        """
        attention = 12.0 * cls.attention_stacks * cfg.num_layers * seq_len * cfg.d_model
        return 6.0 * cls.matmul_params(cfg) + attention

    @classmethod
    def train_flops(cls, cfg: ModelConfig, batch: dict) -> float:
        """Forward + backward FLOPs of a train step on `batch` (numpy or jax arrays; only
        their shapes are read): every row position costs `train_flops_per_token`."""
        B, T = batch["inputs"].shape
        return float(B * T * cls.train_flops_per_token(cfg, T))

    @classmethod
    def decoder_pass_flops(cls, cfg: ModelConfig, batch: dict) -> float:
        """Forward FLOPs of one more pass of the decoder over `batch`'s rows, as a loss runs an
        extra pass without gradient (GLAT's first): here the whole model, a third of
        `train_flops` (the forward of its forward and backward)."""
        return cls.train_flops(cfg, batch) / 3.0
