"""Devices: multi-process start-up, the data-parallel mesh, and global batches.

Data parallelism: the batch is split over a 1-D mesh axis "data" spanning every device of every
process; params and optimizer state are replicated, and XLA inserts the gradient all-reduce. The
same program runs on 1 device or many; only the batch size must divide by the device count.
"""

import os

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed(auto_detect: bool = False) -> None:
    """Starts JAX's multi-process runtime when this process is one of several.

    Either the environment names the cluster (JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES,
    JAX_PROCESS_ID, e.g. for several processes on one machine or a hand-made cluster), or
    `auto_detect` lets JAX find it (TPU pods, SLURM, Open MPI). Otherwise a no-op.
    """
    if "JAX_COORDINATOR_ADDRESS" in os.environ:
        jax.distributed.initialize(
            coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]),
        )
    elif auto_detect:
        jax.distributed.initialize()


def make_mesh() -> Mesh:
    """A 1-D "data" mesh over all devices, with Auto axis types (sharding constraints work)."""
    return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(batch_size: int) -> None:
    """Raises a ValueError unless the global batch splits evenly over processes and devices."""
    if batch_size % jax.device_count():
        raise ValueError(
            f"train.batch_size={batch_size} must be divisible by the {jax.device_count()} devices "
            f"({jax.process_count()} processes)."
        )


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles each process's rows into global arrays sharded over the data axis."""
    sharding = batch_sharded(mesh)
    return {
        key: jax.make_array_from_process_local_data(sharding, value)
        for key, value in local_batch.items()
    }
