"""Where an array's bytes are, for the C ABI: numpy arrays, torch tensors (CPU or CUDA),
objects with the CUDA array interface, and Python buffers, all without copies."""

import ctypes
from typing import Any, Optional, Tuple


def _is_torch(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "data_ptr")


def _torch_dtype_name(tensor: Any) -> str:
    return str(tensor.dtype).replace("torch.", "")


def is_cuda(obj: Any) -> bool:
    """Whether `obj` is in GPU memory: a CUDA tensor, or an object with the CUDA array interface."""
    if _is_torch(obj):
        return bool(obj.is_cuda)
    return hasattr(obj, "__cuda_array_interface__")


def host_buffer(obj: Any, what: str, *, writable: bool, dtype: Optional[str] = None) -> Tuple[int, int, Any]:
    """(address, bytes, keepalive) of a contiguous array in host memory. `dtype` ("int32",
    "uint8", ...) is checked when given. Raises TypeError or ValueError naming `what`."""
    if _is_torch(obj):
        if obj.is_cuda:
            raise ValueError(f"{what} is a CUDA tensor; this call takes host memory")
        if not obj.is_contiguous():
            raise ValueError(f"{what} is not contiguous")
        if dtype is not None and _torch_dtype_name(obj) != dtype:
            raise TypeError(f"{what} has dtype {obj.dtype}, expected {dtype}")
        return obj.data_ptr(), obj.numel() * obj.element_size(), obj
    if hasattr(obj, "__array_interface__") and hasattr(obj, "ctypes"):  # numpy
        if not obj.flags["C_CONTIGUOUS"]:
            raise ValueError(f"{what} is not C-contiguous")
        if writable and not obj.flags["WRITEABLE"]:
            raise ValueError(f"{what} is read-only")
        if dtype is not None and str(obj.dtype) != dtype:
            raise TypeError(f"{what} has dtype {obj.dtype}, expected {dtype}")
        return obj.ctypes.data, obj.nbytes, obj
    if dtype not in (None, "uint8"):
        raise TypeError(f"{what} must be a numpy array or a torch tensor of {dtype}, not {type(obj).__name__}")
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(f"{what} must be a numpy array, a torch tensor or a buffer, not {type(obj).__name__}") from None
    if not view.contiguous:
        raise ValueError(f"{what} is not contiguous")
    if view.readonly:
        if writable:
            raise ValueError(f"{what} is read-only")
        data = bytes(view)  # a read-only buffer: ctypes cannot point into it in place
        holder = ctypes.create_string_buffer(data, len(data))
        return ctypes.addressof(holder), len(data), holder
    holder = (ctypes.c_char * view.nbytes).from_buffer(view)
    return ctypes.addressof(holder), view.nbytes, (holder, view)


def device_pointer(obj: Any, what: str, *, dtype: Optional[str] = None, nbytes: Optional[int] = None) -> int:
    """The CUDA device address of a contiguous CUDA tensor (or an object with the CUDA array
    interface), checked for dtype and size when given."""
    if _is_torch(obj):
        if not obj.is_cuda:
            raise ValueError(f"{what} is in host memory; this call takes a CUDA tensor")
        if not obj.is_contiguous():
            raise ValueError(f"{what} is not contiguous")
        if dtype is not None and _torch_dtype_name(obj) != dtype:
            raise TypeError(f"{what} has dtype {obj.dtype}, expected {dtype}")
        size = obj.numel() * obj.element_size()
        if nbytes is not None and size != nbytes:
            raise ValueError(f"{what} holds {size} bytes, expected {nbytes}")
        return obj.data_ptr()
    interface = getattr(obj, "__cuda_array_interface__", None)
    if interface is None:
        raise TypeError(f"{what} must be a CUDA tensor or expose __cuda_array_interface__, not {type(obj).__name__}")
    if interface.get("strides") is not None:
        raise ValueError(f"{what} is not contiguous")
    return int(interface["data"][0])


def device_buffer(obj: Any, what: str, *, dtype: Optional[str] = None) -> Tuple[int, int]:
    """(address, bytes) of a contiguous CUDA tensor or CUDA-array-interface object."""
    address = device_pointer(obj, what, dtype=dtype)
    if _is_torch(obj):
        return address, obj.numel() * obj.element_size()
    interface = obj.__cuda_array_interface__
    nbytes = int(interface["typestr"][2:])  # "|u1", "<i4": the item size in bytes
    for extent in interface["shape"]:
        nbytes *= int(extent)
    return address, nbytes


def stream_handle(stream: Any, device: Any = None) -> int:
    """A cudaStream_t from None (torch's current stream, on `device` when given, when torch
    has CUDA; else the default stream), an int handle, or an object with `cuda_stream`
    (torch.cuda.Stream)."""
    if stream is None:
        try:
            import torch  # noqa: WPS433 (optional)

            if torch.cuda.is_available():
                return int(torch.cuda.current_stream(device).cuda_stream)
        except ImportError:
            pass
        return 0
    if isinstance(stream, int):
        return stream
    handle = getattr(stream, "cuda_stream", None)
    if handle is None:
        raise TypeError(f"stream must be None, an int handle or a torch.cuda.Stream, not {type(stream).__name__}")
    return int(handle)


class CudaArray:
    """A view of device memory the session owns, with the CUDA array interface, so that
    torch.as_tensor (or CuPy, Numba) wraps it without a copy. Valid while the session lives."""

    def __init__(self, address: int, shape: Tuple[int, ...], typestr: str) -> None:
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": typestr,
            "data": (address, False),
            "version": 2,
            "strides": None,
        }

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.__cuda_array_interface__["shape"]
