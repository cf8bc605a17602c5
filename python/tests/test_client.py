"""The Python client against a real daemon: every call, numpy and torch buffers in place,
bad input as clear exceptions, no leaks, a vanished daemon within the deadline."""

import ctypes
import gc
import os
import pathlib
import re
import threading
import time

import numpy as np
import pytest

import sparsepool

ENTRY = 656


def pattern(sequence: int, layer: int, first: int, count: int) -> np.ndarray:
    tokens = np.arange(first, first + count, dtype=np.uint64)[:, None]
    columns = np.arange(ENTRY, dtype=np.uint64)[None, :]
    return ((tokens * 31 + columns * 7 + sequence * 13 + layer * 101) % 251).astype(np.uint8)


def test_sequences_round_trip_through_numpy(daemon):
    with sparsepool.Client(daemon.address) as client:
        assert client.client_id
        seq = client.create_sequence(layers=3, entry_bytes=ENTRY, tokens=500, tenant="py")
        info = client.info(seq)
        assert info == sparsepool.SequenceInfoTuple(layers=3, entry_bytes=ENTRY, page_tokens=64, tokens=500, tenant="py")
        for layer in range(3):
            client.write(seq, layer, 0, pattern(seq, layer, 0, 500))
        indices = np.array([[5, -1, 499, 0, 64, 63]], dtype=np.int32)
        out = np.full((1, 6, ENTRY), 0xEE, dtype=np.uint8)
        assert client.fetch_topk(2, [seq], indices, out) is out
        for i, token in enumerate(indices[0]):
            if token < 0:
                assert (out[0, i] == 0xEE).all(), "padding is left as it was"
            else:
                assert (out[0, i] == pattern(seq, 2, int(token), 1)[0]).all()
        made = client.fetch_topk(1, [seq], indices[:, :1])
        assert made.shape == (1, 1, ENTRY) and (made[0, 0] == pattern(seq, 1, 5, 1)[0]).all()
        client.extend(seq, 700)
        assert client.info(seq).tokens == 700
        client.write(seq, 0, 600, memoryview(bytearray(pattern(seq, 0, 600, 100).tobytes())))
        client.write(seq, 0, 699, bytes(pattern(seq, 0, 699, 1).tobytes()))
        assert (client.fetch_topk(0, [seq], np.array([[650, 699]], dtype=np.int32))[0, 1] == pattern(seq, 0, 699, 1)[0]).all()
        client.release(seq)
        with pytest.raises(sparsepool.NotFoundError, match="released"):
            client.fetch_topk(0, [seq], np.array([[1]], dtype=np.int32))


def test_counters_and_metrics_text_for_the_engines_own_metrics(daemon):
    with sparsepool.Client(daemon.address) as client:
        assert client.counters()["fetch_calls"] == 0
        seq = client.create_sequence(layers=2, entry_bytes=ENTRY, tokens=128)
        client.write(seq, 1, 0, pattern(seq, 1, 0, 128))
        client.fetch_topk(1, [seq], np.array([[3, -1, 127]], dtype=np.int32))
        with pytest.raises(sparsepool.InvalidArgumentError):
            client.fetch_topk(1, [seq], np.array([[128]], dtype=np.int32))
        counters = client.counters()
        assert counters["fetch_calls"] == 2 and counters["fetch_errors"] == 1
        assert counters["entries_fetched"] == 2 and counters["bytes_fetched"] == 2 * ENTRY
        assert counters["write_calls"] == 1 and counters["bytes_written"] == 128 * ENTRY
        assert counters["layouts_refreshed"] == 1, "index 128 was past the cached layout"
        text = client.metrics_text()
        assert f'sparsepool_client_written_bytes_total{{transport="cxl"}} {128 * ENTRY}\n' in text
        assert 'sparsepool_client_fetch_duration_seconds_count{layer="1"} 1\n' in text
        client.release(seq)


def test_a_fetch_rate_holds_the_clients_fetches_to_it(daemon):
    k = 64
    with sparsepool.Client(daemon.address, fetch_bytes_per_second=k * ENTRY * 5) as client:
        seq = client.create_sequence(layers=2, entry_bytes=ENTRY, tokens=128)
        client.write(seq, 1, 0, pattern(seq, 1, 0, 128))
        indices = np.arange(k, dtype=np.int32).reshape(1, k)
        start = time.monotonic()
        for _ in range(3):
            out = client.fetch_topk(1, [seq], indices)
        # Two calls paid for (a fifth of a second each) before the third went.
        assert time.monotonic() - start >= 0.39
        np.testing.assert_array_equal(out[0], pattern(seq, 1, 0, k))
        paced = re.search(r"^sparsepool_client_fetch_paced_seconds_total (\S+)$", client.metrics_text(), re.M)
        assert paced and 0 < float(paced.group(1)) <= 0.41
        client.release(seq)


def test_torch_cpu_tensors_are_read_and_written_in_place(daemon):
    torch = pytest.importorskip("torch")
    with sparsepool.Client(daemon.address) as client:
        seq = client.create_sequence(layers=1, entry_bytes=ENTRY, tokens=128)
        entries = torch.from_numpy(pattern(seq, 0, 0, 128))
        client.write(seq, 0, 0, entries)
        out = torch.zeros((2, 4, ENTRY), dtype=torch.uint8)
        indices = torch.tensor([[0, 1, 2, -1], [127, 126, -1, 3]], dtype=torch.int32)
        client.fetch_topk(0, [seq, seq], indices, out)
        assert torch.equal(out[0, 0], entries[0]) and torch.equal(out[1, 0], entries[127])
        assert torch.equal(out[0, 3], torch.zeros(ENTRY, dtype=torch.uint8))
        with pytest.raises(TypeError, match="indices has dtype torch.int64, expected int32"):
            client.fetch_topk(0, [seq], torch.tensor([[0]]), out[:1, :1])
        with pytest.raises(ValueError, match="out is not contiguous"):
            client.fetch_topk(0, [seq], indices, torch.zeros((4, 2, ENTRY), dtype=torch.uint8).transpose(0, 1))


def test_the_prefill_to_decode_hand_off(daemon):
    prefill = sparsepool.Client(daemon.address, client_id="py-prefill")
    decode = sparsepool.Client(daemon.address, client_id="py-decode")
    assert decode.client_id == "py-decode"
    seq = prefill.create_sequence(layers=2, entry_bytes=ENTRY, tokens=64)
    prefill.write(seq, 1, 0, pattern(seq, 1, 0, 64))
    decode.adopt(seq)
    prefill.close()
    prefill.close()  # idempotent
    out = decode.fetch_topk(1, [seq], np.array([[10, 63]], dtype=np.int32))
    assert (out[0, 1] == pattern(seq, 1, 63, 1)[0]).all()
    with pytest.raises(ValueError, match="closed"):
        prefill.release(seq)
    decode.close()


def test_bad_input_raises_exceptions_that_say_what_was_wrong(daemon):
    with sparsepool.Client(daemon.address) as client:
        with pytest.raises(sparsepool.InvalidArgumentError, match="layers 0 is out of range") as caught:
            client.create_sequence(layers=0, entry_bytes=ENTRY, tokens=1)
        assert caught.value.code == sparsepool.errors.INVALID_ARGUMENT
        assert isinstance(caught.value, ValueError)
        seq = client.create_sequence(layers=1, entry_bytes=ENTRY, tokens=10)
        with pytest.raises(sparsepool.InvalidArgumentError, match="token index 10 at batch row 0, position 0 is past the 10 tokens"):
            client.fetch_topk(0, [seq], np.array([[10]], dtype=np.int32))
        with pytest.raises(sparsepool.InvalidArgumentError, match="extend the sequence first"):
            client.write(seq, 0, 5, pattern(seq, 0, 5, 10))
        with pytest.raises(sparsepool.InvalidArgumentError, match="not a whole number"):
            client.write(seq, 0, 0, np.zeros(100, dtype=np.uint8))
        with pytest.raises(sparsepool.InvalidArgumentError, match="cannot shrink"):
            client.extend(seq, 5)
        with pytest.raises(sparsepool.NotFoundError, match="unknown sequence 424242"):
            client.release(424242)
        with pytest.raises(TypeError, match="indices has dtype int64, expected int32"):
            client.fetch_topk(0, [seq], np.array([[0]]))
        with pytest.raises(ValueError, match="do not split into 2 rows"):
            client.fetch_topk(0, [seq, seq], np.array([[0, 1, 2]], dtype=np.int32))
        with pytest.raises(ValueError, match="out is read-only"):
            frozen = np.zeros((1, 1, ENTRY), dtype=np.uint8)
            frozen.flags.writeable = False
            client.fetch_topk(0, [seq], np.array([[0]], dtype=np.int32), frozen)
        with pytest.raises(TypeError, match="entries must be a numpy array, a torch tensor or a buffer, not int"):
            client.write(seq, 0, 0, 17)
    with pytest.raises(sparsepool.InvalidArgumentError, match="unknown transport"):
        sparsepool.Client(daemon.address, transport="carrier-pigeon")


def test_no_leaks_over_many_cycles(daemon):
    """Host memory and file descriptors stay flat over many sequences and clients. (Anonymous
    memory only: the pool's region is mapped into the process, and writes into fresh pages
    of it count towards the resident set without being a leak.)"""
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])  # KiB
        raise AssertionError("no RssAnon in /proc/self/status")

    with sparsepool.Client(daemon.address) as client:
        for _ in range(200):  # warm-up: first-use allocations
            client.release(client.create_sequence(layers=2, entry_bytes=ENTRY, tokens=64))
        gc.collect()
        fds_before, rss_before = fds(), rss()
        entries = pattern(1, 0, 0, 64)
        for _ in range(2000):
            seq = client.create_sequence(layers=2, entry_bytes=ENTRY, tokens=64)
            client.write(seq, 0, 0, entries)
            client.release(seq)
        gc.collect()
        assert fds() == fds_before
        assert rss() - rss_before < 8 * 1024, "anonymous memory grew by more than 8 MiB over 2000 cycles"
    for _ in range(30):
        sparsepool.Client(daemon.address, keepalive_interval=0).close()
    gc.collect()
    assert fds() <= fds_before + 2


def test_a_killed_daemon_surfaces_as_an_exception_within_the_deadline(daemon):
    client = sparsepool.Client(daemon.address, rpc_timeout=2.0)
    seq = client.create_sequence(layers=1, entry_bytes=ENTRY, tokens=8)
    daemon.kill()
    start = time.monotonic()
    with pytest.raises((sparsepool.UnavailableError, sparsepool.DeadlineExceededError)) as caught:
        client.extend(seq, 100)
    assert time.monotonic() - start < 6
    assert daemon.address in caught.value.message
    client.close()
    with pytest.raises(sparsepool.UnavailableError, match="did not answer"):
        sparsepool.Client(daemon.address, rpc_timeout=1.0)


def test_blocking_calls_release_the_gil(daemon):
    """Another Python thread runs while a call waits for a daemon that does not answer."""
    client = sparsepool.Client(daemon.address, rpc_timeout=1.5, keepalive_interval=0)
    daemon.process.send_signal(19)  # SIGSTOP: the call waits for its deadline
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        with pytest.raises(sparsepool.SparsepoolError):
            client.create_sequence(layers=1, entry_bytes=ENTRY, tokens=8)
    finally:
        stop.set()
        ticker.join()
        daemon.process.send_signal(18)  # SIGCONT
    assert len(ticks) > 50, f"the other thread ran only {len(ticks)} times in 1.5 s"
    client.close()


class _FakeDeviceArray:
    """Claims to be GPU memory (the CUDA array interface) without being any."""

    __cuda_array_interface__ = {"shape": (1, 1, ENTRY), "typestr": "|u1", "data": (4096, False), "version": 2,
                                "strides": None}


def test_gpu_calls_say_when_there_is_no_cuda_device(daemon):
    try:
        regions = sparsepool.GpuRegions()
    except sparsepool.FailedPreconditionError as e:
        assert "no CUDA device" in e.message
        with sparsepool.Client(daemon.address) as client:
            seq = client.create_sequence(layers=1, entry_bytes=ENTRY, tokens=8)
            with pytest.raises(sparsepool.FailedPreconditionError, match="no CUDA device"):
                client.fetch_topk(0, [seq], np.array([[1]], dtype=np.int32), _FakeDeviceArray())
        return
    regions.close()
    pytest.skip("a CUDA device is present: the GPU tests cover it")


def test_the_package_loads_the_library_it_was_built_with():
    from sparsepool import _native

    assert _native.lib().sp_abi_version() == _native.ABI_VERSION
    assert ctypes.sizeof(_native.RowFailure) == 4 + 4 + 8 + 4 + 256 + 4  # C layout with padding


def test_tenants_tokens_and_each_tenants_own_sequences(tmp_path):
    """A daemon with tenants: a token is needed, and a tenant reaches its own sequences only."""
    import hashlib

    tokens = {"acme": "acme-token-0123", "globex": "globex-token-4567"}
    lines = [f"tenant {name} token_sha256={hashlib.sha256(t.encode()).hexdigest()}" for name, t in tokens.items()]
    (tmp_path / "tenants.conf").write_text("\n".join(lines) + "\n")
    from daemon import Daemon

    d = Daemon("tenants", extra=[f"--tenants={tmp_path / 'tenants.conf'}"])
    d.start()
    try:
        with pytest.raises(sparsepool.UnauthenticatedError, match="token"):
            sparsepool.Client(d.address, rpc_timeout=3.0)
        with sparsepool.Client(d.address, token=tokens["acme"]) as acme, sparsepool.Client(
            d.address, token=tokens["globex"]
        ) as globex:
            seq = acme.create_sequence(layers=1, entry_bytes=ENTRY, tokens=64)
            acme.write(seq, 0, 0, pattern(seq, 0, 0, 64))
            assert acme.info(seq).tenant == "acme"
            with pytest.raises(sparsepool.PermissionDeniedError, match=f"sequence {seq} belongs to another tenant"):
                globex.info(seq)
            with pytest.raises(sparsepool.PermissionDeniedError):
                globex.release(seq)
            assert acme.info(seq).tokens == 64
    finally:
        d.stop()


def test_placement_keys_and_striped_layers_reach_the_regions_they_name():
    """A daemon with two regions: the placement key picks the home region, and a striped
    sequence's odd layers live in the other (found in the region files themselves)."""
    from daemon import Daemon

    second = f"/dev/shm/sparsepool-pytest-stripes-second-{os.getpid()}"
    d = Daemon("stripes", extra=[f"--region=shm:{second}:64MiB"])
    d.start()
    try:
        regions = [d.region, second]

        def holder(entry: np.ndarray) -> list:
            return [i for i, path in enumerate(regions) if pathlib.Path(path).read_bytes().find(entry.tobytes()) >= 0]

        rng = np.random.default_rng(7)
        with sparsepool.Client(d.address) as client:
            for key in (0, 1):
                seq = client.create_sequence(layers=2, entry_bytes=ENTRY, tokens=64, placement_key=key, stripes=2)
                entries = rng.integers(0, 256, size=(2, 64, ENTRY), dtype=np.uint8)  # unique bytes to look for
                for layer in range(2):
                    client.write(seq, layer, 0, entries[layer])
                    out = client.fetch_topk(layer, [seq], np.array([[0, 63]], dtype=np.int32))
                    assert (out[0, 1] == entries[layer, 63]).all()
                assert holder(entries[0, 5]) == [key], "layer 0 lives in the key's region"
                assert holder(entries[1, 5]) == [1 - key], "layer 1 lives in the other"
            with pytest.raises(sparsepool.InvalidArgumentError, match="stripes 3 needs as many regions"):
                client.create_sequence(layers=4, entry_bytes=ENTRY, tokens=64, stripes=3)
            with pytest.raises(ValueError, match="placement_key"):
                client.create_sequence(layers=1, entry_bytes=ENTRY, tokens=64, placement_key=-1)
            with pytest.raises(ValueError, match="stripes -2"):
                client.create_sequence(layers=1, entry_bytes=ENTRY, tokens=64, stripes=-2)
    finally:
        d.stop()
        if os.path.exists(second):
            os.unlink(second)
