"""The GPU path: regions registered once per process, and the decode session whose whole
step an engine captures in one CUDA graph (client/decode_session.h says how it works)."""

import ctypes
from typing import Any, List, NamedTuple, Optional, Tuple

from . import _arrays
from ._native import RowFailure as _RowFailure
from ._native import SessionOptions, check, lib
from .client import Client
from .errors import error_for


class GpuRegions:
    """Pool regions mapped and registered with CUDA, once per process: share one among
    every session of the process. Raises FailedPreconditionError without a CUDA device."""

    def __init__(self) -> None:
        handle = ctypes.c_void_p()
        check(lib().sp_gpu_regions_create(ctypes.byref(handle)))
        self._handle: Optional[ctypes.c_void_p] = handle

    @property
    def handle(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise ValueError("the region registry is closed")
        return self._handle

    def register(self, client: Client, sequence: int) -> None:
        """Warm-up: registers (pins for the GPU) the region holding `sequence` now rather
        than at the first step."""
        check(lib().sp_gpu_regions_register(self.handle, client.handle, sequence))

    @property
    def pinned_bytes(self) -> int:
        return lib().sp_gpu_regions_pinned_bytes(self.handle)

    def close(self) -> None:
        """Unregisters every region. Close every session that uses it first."""
        if self._handle is not None:
            lib().sp_gpu_regions_destroy(self._handle)
            self._handle = None


class RowFailure(NamedTuple):
    row: int
    sequence: int
    error: Exception


class RowState(NamedTuple):
    active: bool
    sequence: int
    tokens: int


def _as_tensor(array: _arrays.CudaArray) -> Any:
    try:
        import torch

        return torch.as_tensor(array, device="cuda")
    except ImportError:
        return array


class DecodeSession:
    """A decode batch on the GPU. Between steps: join, leave, prepare_step. The step,
    capturable with torch.cuda.graph: begin_step, then per layer write_layer (the new
    token's entry of every row) and fetch_layer (the indexer's top-k), then end_step.
    `stream` arguments default to torch's current stream."""

    def __init__(
        self,
        client: Client,
        regions: GpuRegions,
        *,
        max_batch: int,
        layers: int,
        entry_bytes: int,
        k: int,
        max_tokens: int,
        page_tokens: int = 64,
        cache_slots: int = 0,
        buffers: int = 3,
        reserve_tokens: int = 1024,
        record_hits_ready: bool = False,
    ) -> None:
        options = SessionOptions()
        lib().sp_session_options_init(ctypes.byref(options))
        options.max_batch, options.layers, options.entry_bytes, options.k = max_batch, layers, entry_bytes, k
        options.max_tokens, options.page_tokens, options.cache_slots = max_tokens, page_tokens, cache_slots
        options.buffers, options.reserve_tokens = buffers, reserve_tokens
        options.record_hits_ready = 1 if record_hits_ready else 0
        handle = ctypes.c_void_p()
        check(lib().sp_session_create(client.handle, regions.handle, ctypes.byref(options), ctypes.byref(handle)))
        self._handle: Optional[ctypes.c_void_p] = handle
        self._client, self._regions = client, regions  # both must outlive the session
        self.max_batch, self.layers, self.entry_bytes, self.k = max_batch, layers, entry_bytes, k

    @property
    def handle(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise ValueError("the session is closed")
        return self._handle

    def close(self) -> None:
        """Waits for the device, then frees the session's memory."""
        if self._handle is not None:
            lib().sp_session_destroy(self._handle)
            self._handle = None

    def __enter__(self) -> "DecodeSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- between steps ----

    def join(self, sequence: int, tokens: int, stream: Any = None) -> int:
        """Takes `sequence`, whose first `tokens` tokens are written, into a free row."""
        row = ctypes.c_uint32()
        check(lib().sp_session_join(self.handle, sequence, tokens, _arrays.stream_handle(stream), ctypes.byref(row)))
        return row.value

    def leave(self, row: int, stream: Any = None) -> None:
        check(lib().sp_session_leave(self.handle, row, _arrays.stream_handle(stream)))

    def prepare_step(self, stream: Any = None) -> List[RowFailure]:
        """Before every step (every replay): the rows the session could not serve. A
        sequence released under the session and a row out of room have left it (a row
        out of room with Unavailable, DeadlineExceeded or ResourceExhausted may join
        again later); a bad index stays. Whether a row left: row(f.row) is not active or
        holds another sequence."""
        capacity = self.max_batch * 4  # a row can fail in at most a few ways per step
        failures = (_RowFailure * capacity)()
        count = ctypes.c_size_t()
        check(lib().sp_session_prepare_step(self.handle, _arrays.stream_handle(stream), failures, capacity,
                                            ctypes.byref(count)))
        return [
            RowFailure(f.row, f.sequence, error_for(f.code, f.message.decode("utf-8", "replace")))
            for f in failures[: count.value]
        ]

    def seed_cache(self, layer: int, topk: Any, stream: Any = None) -> None:
        """Seeds the residency cache of `layer` from the prefill's top-k (int32 CUDA
        [max_batch, k])."""
        pointer = _arrays.device_pointer(topk, "topk", dtype="int32", nbytes=self.max_batch * self.k * 4)
        check(lib().sp_session_seed_cache(self.handle, layer, pointer, _arrays.stream_handle(stream)))

    def row(self, row: int) -> RowState:
        active, sequence, tokens = ctypes.c_int(), ctypes.c_uint64(), ctypes.c_uint64()
        check(lib().sp_session_row(self.handle, row, ctypes.byref(active), ctypes.byref(sequence), ctypes.byref(tokens)))
        return RowState(bool(active.value), sequence.value, tokens.value)

    # ---- the step ----

    def begin_step(self, stream: Any = None) -> None:
        check(lib().sp_session_begin_step(self.handle, _arrays.stream_handle(stream)))

    def write_layer(self, layer: int, entries: Any, stream: Any = None) -> None:
        """Stores each active row's new token of `layer`: uint8 CUDA [max_batch, entry_bytes]."""
        pointer = _arrays.device_pointer(entries, "entries", nbytes=self.max_batch * self.entry_bytes)
        check(lib().sp_session_write_layer(self.handle, layer, pointer, _arrays.stream_handle(stream)))

    def fetch_layer(self, layer: int, topk: Any, stream: Any = None) -> None:
        """Delivers the entries `topk` (int32 CUDA [max_batch, k], -1 padding) selects."""
        pointer = _arrays.device_pointer(topk, "topk", dtype="int32", nbytes=self.max_batch * self.k * 4)
        check(lib().sp_session_fetch_layer(self.handle, layer, pointer, _arrays.stream_handle(stream)))

    def end_step(self, stream: Any = None) -> None:
        check(lib().sp_session_end_step(self.handle, _arrays.stream_handle(stream)))

    def delivered(self, layer: int) -> Tuple[Any, Any]:
        """Where fetch_layer(layer) delivers, as torch CUDA tensors viewing the session's
        memory (no copy; valid while the session lives): entries uint8 [count, entry_bytes]
        (FlashMLA's cache viewed as rows) and flat indices int32 [max_batch, k] (-1: none)."""
        entries, count, flat = ctypes.c_void_p(), ctypes.c_uint64(), ctypes.c_void_p()
        check(lib().sp_session_delivered(self.handle, layer, ctypes.byref(entries), ctypes.byref(count),
                                         ctypes.byref(flat)))
        return (
            _as_tensor(_arrays.CudaArray(entries.value, (count.value, self.entry_bytes), "|u1")),
            _as_tensor(_arrays.CudaArray(flat.value, (self.max_batch, self.k), "<i4")),
        )

    def cache_counters(self) -> Tuple[int, int]:
        """With the cache: (hits, misses) so far over every row and layer, for the engine's
        metrics. Waits for the device: call it between steps."""
        hits, misses = ctypes.c_uint64(), ctypes.c_uint64()
        check(lib().sp_session_cache_counters(self.handle, ctypes.byref(hits), ctypes.byref(misses)))
        return int(hits.value), int(misses.value)

    def hits_ready(self, layer: int) -> int:
        """With the cache and record_hits_ready: the cudaEvent_t (as an int) recorded when
        `layer`'s hits are in place, before its misses land."""
        event = ctypes.c_void_p()
        check(lib().sp_session_hits_ready(self.handle, layer, ctypes.byref(event)))
        return event.value or 0
