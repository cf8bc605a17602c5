"""sparsepool: a memory pool for the latent KV cache of sparse-attention language models.

    import sparsepool
    client = sparsepool.Client("10.0.0.7:7070")
    seq = client.create_sequence(layers=61, entry_bytes=656, tokens=prompt_tokens)
    client.write(seq, layer, 0, prefill_entries)             # uint8 [tokens, 656]
    out = client.fetch_topk(layer, [seq], topk)               # int32 [1, k] -> uint8 [1, k, 656]

GPU decode workers use DecodeSession (sparsepool.gpu), whose whole step torch.cuda.graph
captures. Errors are SparsepoolError subclasses carrying the status code and message.
"""

from .client import Client, SequenceInfoTuple
from .errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SparsepoolError,
    UnauthenticatedError,
    UnavailableError,
)
from .gpu import DecodeSession, GpuRegions, RowFailure, RowState

__all__ = [
    "Client",
    "DecodeSession",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "GpuRegions",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RowFailure",
    "RowState",
    "SequenceInfoTuple",
    "SparsepoolError",
    "UnauthenticatedError",
    "UnavailableError",
]
__version__ = "0.2.0"
