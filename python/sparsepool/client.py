"""The client: sequences in the pool, and the CPU data path."""

import ctypes
from typing import Any, Dict, NamedTuple, Optional, Sequence

from . import _arrays
from . import errors
from ._native import ClientCounters, ClientOptions, Placement, SequenceInfo, SequenceSpec, check, lib


class SequenceInfoTuple(NamedTuple):
    layers: int
    entry_bytes: int
    page_tokens: int
    tokens: int
    tenant: str


class Client:
    """A connection to a sparsepool daemon, with a lease the background loop renews.

    Every method raises a `sparsepool.SparsepoolError` subclass whose message names the bad
    value. Thread-safe: calls may come from several threads (the GIL is released while C++
    blocks). Closing the client does not release its sequences; the daemon reclaims them
    when the lease runs out, unless another client adopted them.
    """

    def __init__(
        self,
        address: str = "127.0.0.1:7070",
        *,
        client_id: Optional[str] = None,
        transport: str = "cxl",
        copy_threads: int = 1,
        keepalive_interval: float = 5.0,
        rpc_timeout: float = 10.0,
        token: Optional[str] = None,
        tls_root_certs: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
        fetch_bytes_per_second: int = 0,
    ) -> None:
        """Connects; `token` is the tenant's for a daemon that serves tenants (the daemon
        then acts within that tenant), `tls_root_certs` the PEM file of the CA that signed
        the daemon's certificate (TLS; plaintext without), `tls_cert`/`tls_key` a client
        certificate for daemons that require one, `fetch_bytes_per_second` the most bytes a
        second this client's fetches deliver (paced: a tenant's share of the host's memory
        bandwidth; 0, unpaced)."""
        native = lib()
        options = ClientOptions()
        native.sp_client_options_init(ctypes.byref(options))
        self._strings = [
            (text or "").encode()
            for text in (address, client_id, transport, token, tls_root_certs, tls_cert, tls_key)
        ]
        (
            options.address,
            options.client_id,
            options.transport,
            options.token,
            options.tls_root_certs,
            options.tls_cert,
            options.tls_key,
        ) = self._strings
        options.copy_threads = copy_threads
        options.keepalive_interval_ms = int(keepalive_interval * 1000)
        options.rpc_timeout_ms = int(rpc_timeout * 1000)
        options.fetch_bytes_per_second = fetch_bytes_per_second
        handle = ctypes.c_void_p()
        check(native.sp_client_connect(ctypes.byref(options), ctypes.byref(handle)))
        self._handle: Optional[ctypes.c_void_p] = handle

    @property
    def handle(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise ValueError("the client is closed")
        return self._handle

    @property
    def client_id(self) -> str:
        return lib().sp_client_id(self.handle).decode()

    def close(self) -> None:
        """Closes the connection (idempotent)."""
        if self._handle is not None:
            lib().sp_client_close(self._handle)
            self._handle = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass

    def create_sequence(
        self,
        layers: int,
        entry_bytes: int,
        tokens: int,
        *,
        tenant: Optional[str] = None,
        page_tokens: int = 0,
        entry_alignment: int = 0,
        placement_key: Optional[int] = None,
        stripes: int = 0,
    ) -> int:
        """A new sequence with room for `tokens` tokens; returns its id.

        `placement_key`: the region to start in, among those serving the tenant (key
        modulo their number; GPU rank r passes r). `stripes`: spread the layers round
        robin over this many regions (0 or 1: one).
        """
        spec = SequenceSpec()
        lib().sp_sequence_spec_init(ctypes.byref(spec))
        spec.layers, spec.entry_bytes, spec.tokens = layers, entry_bytes, tokens
        tenant_bytes = tenant.encode() if tenant else None
        spec.tenant = tenant_bytes
        spec.page_tokens, spec.entry_alignment = page_tokens, entry_alignment
        placement = Placement()
        lib().sp_placement_init(ctypes.byref(placement))
        if placement_key is not None:
            if not 0 <= placement_key < 2**32:
                raise ValueError(f"placement_key {placement_key} is outside [0, 2^32)")
            placement.placement_key = placement_key
        if not 0 <= stripes < 2**32:
            raise ValueError(f"stripes {stripes} is outside [0, 2^32)")
        placement.stripes = stripes
        sequence = ctypes.c_uint64()
        check(
            lib().sp_sequence_create_placed(
                self.handle, ctypes.byref(spec), ctypes.byref(placement), ctypes.byref(sequence)
            )
        )
        return sequence.value

    def extend(self, sequence: int, total_tokens: int) -> None:
        """Grows the sequence to `total_tokens` tokens (not by)."""
        check(lib().sp_sequence_extend(self.handle, sequence, total_tokens))

    def release(self, sequence: int) -> None:
        check(lib().sp_sequence_release(self.handle, sequence))

    def adopt(self, sequence: int) -> None:
        """Makes this client the sequence's owner (a prefill worker's hand-off)."""
        check(lib().sp_sequence_adopt(self.handle, sequence))

    def info(self, sequence: int) -> SequenceInfoTuple:
        """The sequence's shape and tokens, asked of the daemon."""
        info = SequenceInfo()
        check(lib().sp_sequence_info_get(self.handle, sequence, ctypes.byref(info)))
        return SequenceInfoTuple(
            info.layers, info.entry_bytes, info.page_tokens, info.tokens, info.tenant.decode()
        )

    def write(self, sequence: int, layer: int, first_token: int, entries: Any) -> None:
        """Stores the entries of tokens [first_token, first_token + n) of `layer`: `entries`
        holds n * entry_bytes bytes (a uint8 numpy array or CPU tensor [n, entry_bytes], or
        any contiguous buffer), read in place."""
        address, nbytes, keep = _arrays.host_buffer(entries, "entries", writable=False)
        check(lib().sp_write_entries(self.handle, sequence, layer, first_token, address, nbytes))
        del keep

    def fetch_topk(
        self, layer: int, sequences: Sequence[int], indices: Any, out: Any = None, stream: Any = None
    ) -> Any:
        """One layer's top-k for a batch: `indices` is int32 [rows, k] in host memory (-1 =
        padding), `out` uint8 [rows, k, entry_bytes] (a numpy array is made when None).
        Returns `out`.

        `out` in host memory (numpy, a CPU tensor): padding's output is left as it was.
        `out` a CUDA tensor: over any transport the entries are staged in pinned host
        memory and copied onto `stream` (default: torch's current stream on `out`'s device), padding
        zeroed; they are there once the stream reaches the copy. (A CUDA-graph-captured
        step uses DecodeSession instead.)"""
        rows = len(sequences)
        ids = (ctypes.c_uint64 * rows)(*sequences)
        index_address, index_bytes, keep_indices = _arrays.host_buffer(indices, "indices", writable=False,
                                                                       dtype="int32")
        if rows and index_bytes % (4 * rows) != 0:
            raise ValueError(f"indices hold {index_bytes // 4} values, which do not split into {rows} rows of k")
        k = index_bytes // 4 // rows if rows else 0
        if out is not None and _arrays.is_cuda(out):
            out_address, out_bytes = _arrays.device_buffer(out, "out", dtype="uint8")
            check(lib().sp_fetch_topk_device(self.handle, layer, ids, rows, index_address, k, out_address, out_bytes,
                                             _arrays.stream_handle(stream, device=getattr(out, "device", None))))
        else:
            if out is None:
                import numpy

                entry_bytes = self.info(sequences[0]).entry_bytes if rows else 0
                out = numpy.zeros((rows, k, entry_bytes), dtype=numpy.uint8)
            out_address, out_bytes, keep_out = _arrays.host_buffer(out, "out", writable=True)
            check(lib().sp_fetch_topk(self.handle, layer, ids, rows, index_address, k, out_address, out_bytes))
            del keep_out
        del keep_indices
        return out

    def counters(self) -> Dict[str, int]:
        """What the client has counted since it connected, summed over its transports:
        fetch_calls, fetch_errors, entries_fetched, bytes_fetched, write_calls,
        write_errors, bytes_written, layouts_refreshed, stale_layout_refusals."""
        counters = ClientCounters()
        check(lib().sp_client_counters_get(self.handle, ctypes.byref(counters)))
        return {name: int(getattr(counters, name)) for name, _ in ClientCounters._fields_}

    def metrics_text(self) -> str:
        """The same per transport, with each layer's fetch latency histogram, in
        Prometheus' text format (sparsepool_client_*), for the engine's /metrics."""
        length = ctypes.c_size_t(0)
        capacity = 16384
        while True:
            buffer = ctypes.create_string_buffer(capacity)
            code = lib().sp_client_metrics_text(self.handle, buffer, capacity, ctypes.byref(length))
            if code == errors.OUT_OF_RANGE and length.value >= capacity:
                capacity = length.value + 1  # the text grew (a layer fetched first): ask again
                continue
            check(code)
            return buffer.value.decode("utf-8")
