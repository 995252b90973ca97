"""Devices: the ("data", "fsdp") mesh, and where the state and batches live (the start-up of
several processes is training/processes.py).

The mesh has two axes: "fsdp" (`config.mesh.fsdp` devices) and "data" (the rest). The batch is
split over both; every parameter and its optimizer state are split over "fsdp" along one
dimension chosen from its logical axis names (model/sharding.py), so a model needs 1/fsdp of its
memory per device. With fsdp = 1 (the default) this is plain data parallelism: params replicated.
XLA inserts the all-gathers and reduce-scatters; the train step stays one jitted pure function.
"""

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from model.sharding import FSDP_AXIS, fsdp_spec

DATA_AXIS = "data"


def check_mesh(fsdp: int) -> None:
    """Raises a ValueError unless `fsdp` devices per group divide the devices."""
    if fsdp < 1 or jax.device_count() % fsdp:
        raise ValueError(
            f"mesh.fsdp={fsdp} must be >= 1 and divide the {jax.device_count()} devices "
            f"({jax.process_count()} processes)."
        )


def make_mesh(fsdp: int = 1) -> Mesh:
    """The (data, fsdp) mesh over all devices, with Auto axis types (sharding constraints work)."""
    check_mesh(fsdp)
    return jax.make_mesh(
        (jax.device_count() // fsdp, fsdp),
        (DATA_AXIS, FSDP_AXIS),
        axis_types=(AxisType.Auto, AxisType.Auto),
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Rows split over every device: the data and fsdp axes together."""
    return NamedSharding(mesh, PartitionSpec((DATA_AXIS, FSDP_AXIS)))


def param_shardings(params: nnx.State, mesh: Mesh) -> nnx.State:
    """Each parameter's NamedSharding: one dimension over "fsdp" (model/sharding.py's rule)."""
    fsdp = mesh.shape[FSDP_AXIS]
    specs = nnx.get_partition_spec(params)
    return jax.tree.map(
        lambda x, spec: NamedSharding(mesh, fsdp_spec(tuple(spec), x.shape, fsdp)),
        params,
        specs,
        is_leaf=lambda x: isinstance(x, PartitionSpec),
    )


def state_shardings(
    optimizer: optax.GradientTransformation, params: nnx.State, opt_state, mesh: Mesh
) -> tuple[nnx.State, object]:
    """(params, optimizer state) shardings: Adam's moments follow their parameter; counters and
    other scalars are replicated."""
    params_sharding = param_shardings(params, mesh)
    opt_sharding = optax.tree_map_params(
        optimizer,
        lambda _, sharding: sharding,
        opt_state,
        params_sharding,
        transform_non_params=lambda _: replicated(mesh),
        is_leaf=lambda x: isinstance(x, NamedSharding),
    )
    return params_sharding, opt_sharding


def check_batch_size(batch_size: int) -> None:
    """Raises a ValueError unless the global batch splits evenly over processes and devices."""
    if batch_size % jax.device_count():
        raise ValueError(
            f"train.batch_size={batch_size} must be divisible by the {jax.device_count()} devices "
            f"({jax.process_count()} processes)."
        )


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles each process's rows into global arrays sharded over every device."""
    sharding = batch_sharded(mesh)
    return {
        key: jax.make_array_from_process_local_data(sharding, value)
        for key, value in local_batch.items()
    }
