"""model/sharding.py: every parameter of a tiny decoder records the logical names of its
dimensions, and the FSDP rule shards each over "fsdp" along the first name, in priority order,
whose size divides; nothing is sharded on one device."""

import jax
import pytest
from conftest import make_tiny_config
from flax import nnx
from jax.sharding import PartitionSpec

from model import make_decoder, sharding


def _names_and_shapes(cfg):
    """{path: (logical names, shape)} of every parameter of a decoder of `cfg`."""
    _, params = nnx.split(make_decoder(cfg, seed=0), nnx.Param)
    specs = nnx.get_partition_spec(params)  # As training/mesh.py reads them.
    names = jax.tree_util.tree_leaves_with_path(
        specs, is_leaf=lambda x: isinstance(x, PartitionSpec)
    )
    shapes = [leaf.shape for leaf in jax.tree.leaves(params)]
    return {
        jax.tree_util.keystr(path).removesuffix(".value"): (tuple(spec), shape)
        for (path, spec), shape in zip(names, shapes, strict=True)
    }


def test_every_parameter_names_each_of_its_dimensions():
    cfg = make_tiny_config(length_head=True)
    found = _names_and_shapes(cfg)
    assert found
    for path, (names, shape) in found.items():
        assert names is not None and len(names) == len(shape), path
        assert set(names) <= set(sharding.FSDP_PRIORITY), (path, names)
    # The documented names: token embeddings [vocab, embed], MLP kernels over mlp.
    assert found["['token_embed']['embedding']"] == (("vocab", "embed"), (23, 32))
    assert found["['position_embed']['embedding']"] == (("positions", "embed"), (48, 32))
    assert found["['blocks'][0]['mlp_in']['kernel']"] == (("embed", "mlp"), (32, 64))
    assert found["['lm_head']['bias']"] == (("vocab",), (23,))


def test_the_fsdp_rule_shards_every_matrix_along_embed_first():
    cfg = make_tiny_config(length_head=True)
    for path, (names, shape) in _names_and_shapes(cfg).items():
        spec = sharding.fsdp_spec(names, shape, fsdp=4)
        if len(shape) == 2:  # Every matrix has an embed dimension, and d_model=32 divides.
            assert spec == PartitionSpec(*("fsdp" if n == "embed" else None for n in names)), path
        assert sharding.fsdp_spec(names, shape, fsdp=1) == PartitionSpec()


@pytest.mark.parametrize(
    ("names", "shape", "fsdp", "expected"),
    [
        (("embed", "mlp"), (32, 64), 4, PartitionSpec("fsdp", None)),
        (("embed", "mlp"), (30, 64), 4, PartitionSpec(None, "fsdp")),  # 30 does not divide.
        (("mlp",), (64,), 4, PartitionSpec("fsdp")),
        (("vocab",), (21,), 4, PartitionSpec()),  # A 21-entry bias over 4 devices: replicated.
        (("vocab", "embed"), (21, 30), 4, PartitionSpec()),
        ((), (), 4, PartitionSpec()),
        (None, (3,), 4, PartitionSpec()),
    ],
)
def test_fsdp_spec_picks_the_first_dimension_in_priority_order_that_divides(
    names, shape, fsdp, expected
):
    assert sharding.fsdp_spec(names, shape, fsdp) == expected
