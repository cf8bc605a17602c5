"""Loads libsparsepool.so and declares the C ABI's functions for ctypes.

ctypes releases the GIL for the length of every call, so a call that blocks in C++ (an
RPC, a copy) does not stop other Python threads.
"""

import ctypes
import os
import pathlib
from typing import Optional

from . import errors

_HERE = pathlib.Path(__file__).resolve().parent
ABI_VERSION = 3


def _library_path() -> str:
    explicit = os.environ.get("SPARSEPOOL_LIBRARY")
    if explicit:
        return explicit
    bundled = _HERE / "_lib" / "libsparsepool.so"
    if bundled.exists():
        return str(bundled)
    raise ImportError(
        "sparsepool: libsparsepool.so is not in the package (build it with tools/python_build.sh "
        "and reinstall) and SPARSEPOOL_LIBRARY does not name it"
    )


c_void_p = ctypes.c_void_p
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_int = ctypes.c_int
c_size_t = ctypes.c_size_t
c_char_p = ctypes.c_char_p


class ClientOptions(ctypes.Structure):
    _fields_ = [
        ("address", c_char_p),
        ("client_id", c_char_p),
        ("transport", c_char_p),
        ("copy_threads", c_int),
        ("keepalive_interval_ms", c_uint32),
        ("rpc_timeout_ms", c_uint32),
        ("token", c_char_p),
        ("tls_root_certs", c_char_p),
        ("tls_cert", c_char_p),
        ("tls_key", c_char_p),
        ("fetch_bytes_per_second", c_uint64),
    ]


class SequenceSpec(ctypes.Structure):
    _fields_ = [
        ("layers", c_uint32),
        ("entry_bytes", c_uint32),
        ("tokens", c_uint64),
        ("tenant", c_char_p),
        ("page_tokens", c_uint32),
        ("entry_alignment", c_uint32),
    ]


class Placement(ctypes.Structure):
    _fields_ = [
        ("placement_key", ctypes.c_int64),
        ("stripes", c_uint32),
    ]


class SequenceInfo(ctypes.Structure):
    _fields_ = [
        ("layers", c_uint32),
        ("entry_bytes", c_uint32),
        ("page_tokens", c_uint32),
        ("tokens", c_uint64),
        ("tenant", ctypes.c_char * 64),
    ]


class ClientCounters(ctypes.Structure):
    _fields_ = [
        ("fetch_calls", c_uint64),
        ("fetch_errors", c_uint64),
        ("entries_fetched", c_uint64),
        ("bytes_fetched", c_uint64),
        ("write_calls", c_uint64),
        ("write_errors", c_uint64),
        ("bytes_written", c_uint64),
        ("layouts_refreshed", c_uint64),
        ("stale_layout_refusals", c_uint64),
    ]


class SessionOptions(ctypes.Structure):
    _fields_ = [
        ("max_batch", c_uint32),
        ("layers", c_uint32),
        ("entry_bytes", c_uint32),
        ("k", c_uint32),
        ("max_tokens", c_uint64),
        ("page_tokens", c_uint32),
        ("cache_slots", c_uint32),
        ("buffers", c_uint32),
        ("reserve_tokens", c_uint64),
        ("record_hits_ready", c_uint32),
    ]


class RowFailure(ctypes.Structure):
    _fields_ = [
        ("row", c_uint32),
        ("sequence", c_uint64),
        ("code", c_int),
        ("message", ctypes.c_char * 256),
    ]


_lib: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded library, its functions declared (loaded on first use)."""
    global _lib
    if _lib is not None:
        return _lib
    library = ctypes.CDLL(_library_path())
    P = ctypes.POINTER
    declarations = {
        "sp_abi_version": (c_int, []),
        "sp_last_error": (c_char_p, []),
        "sp_client_options_init": (None, [P(ClientOptions)]),
        "sp_client_connect": (c_int, [P(ClientOptions), P(c_void_p)]),
        "sp_client_close": (None, [c_void_p]),
        "sp_client_id": (c_char_p, [c_void_p]),
        "sp_sequence_spec_init": (None, [P(SequenceSpec)]),
        "sp_sequence_create": (c_int, [c_void_p, P(SequenceSpec), P(c_uint64)]),
        "sp_placement_init": (None, [P(Placement)]),
        "sp_sequence_create_placed": (c_int, [c_void_p, P(SequenceSpec), P(Placement), P(c_uint64)]),
        "sp_sequence_extend": (c_int, [c_void_p, c_uint64, c_uint64]),
        "sp_sequence_release": (c_int, [c_void_p, c_uint64]),
        "sp_sequence_adopt": (c_int, [c_void_p, c_uint64]),
        "sp_sequence_info_get": (c_int, [c_void_p, c_uint64, P(SequenceInfo)]),
        "sp_write_entries": (c_int, [c_void_p, c_uint64, c_uint32, c_uint64, c_void_p, c_size_t]),
        "sp_fetch_topk": (c_int, [c_void_p, c_uint32, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p, c_size_t]),
        "sp_fetch_topk_device": (
            c_int, [c_void_p, c_uint32, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p]
        ),
        "sp_client_counters_get": (c_int, [c_void_p, P(ClientCounters)]),
        "sp_client_metrics_text": (c_int, [c_void_p, c_char_p, c_size_t, P(c_size_t)]),
        "sp_gpu_regions_create": (c_int, [P(c_void_p)]),
        "sp_gpu_regions_destroy": (None, [c_void_p]),
        "sp_gpu_regions_register": (c_int, [c_void_p, c_void_p, c_uint64]),
        "sp_gpu_regions_pinned_bytes": (c_uint64, [c_void_p]),
        "sp_session_options_init": (None, [P(SessionOptions)]),
        "sp_session_create": (c_int, [c_void_p, c_void_p, P(SessionOptions), P(c_void_p)]),
        "sp_session_destroy": (None, [c_void_p]),
        "sp_session_join": (c_int, [c_void_p, c_uint64, c_uint64, c_void_p, P(c_uint32)]),
        "sp_session_leave": (c_int, [c_void_p, c_uint32, c_void_p]),
        "sp_session_prepare_step": (c_int, [c_void_p, c_void_p, P(RowFailure), c_size_t, P(c_size_t)]),
        "sp_session_seed_cache": (c_int, [c_void_p, c_uint32, c_void_p, c_void_p]),
        "sp_session_begin_step": (c_int, [c_void_p, c_void_p]),
        "sp_session_write_layer": (c_int, [c_void_p, c_uint32, c_void_p, c_void_p]),
        "sp_session_fetch_layer": (c_int, [c_void_p, c_uint32, c_void_p, c_void_p]),
        "sp_session_end_step": (c_int, [c_void_p, c_void_p]),
        "sp_session_delivered": (c_int, [c_void_p, c_uint32, P(c_void_p), P(c_uint64), P(c_void_p)]),
        "sp_session_hits_ready": (c_int, [c_void_p, c_uint32, P(c_void_p)]),
        "sp_session_row": (c_int, [c_void_p, c_uint32, P(c_int), P(c_uint64), P(c_uint64)]),
        "sp_session_cache_counters": (c_int, [c_void_p, P(c_uint64), P(c_uint64)]),
    }
    for name, (restype, argtypes) in declarations.items():
        function = getattr(library, name)
        function.restype = restype
        function.argtypes = argtypes
    version = library.sp_abi_version()
    if version != ABI_VERSION:
        raise ImportError(f"sparsepool: {_library_path()} has ABI version {version}; this package needs {ABI_VERSION}")
    _lib = library
    return library


def check(code: int) -> None:
    """Raises the exception of a failed call's code, with its message."""
    if code != errors.OK:
        raise errors.error_for(code, lib().sp_last_error().decode("utf-8", "replace"))
