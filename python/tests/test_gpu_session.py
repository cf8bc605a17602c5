"""The decode session from Python with torch CUDA tensors: a step captured with
torch.cuda.graph and replayed while contexts grow and the batch changes, every delivered
entry checked; a released sequence reported. Skips without CUDA (CI); runs on the device
machine."""

import numpy as np
import pytest

import sparsepool

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device: the GPU session tests run on the device machine", allow_module_level=True)

ENTRY = 656
LAYERS = 3
BATCH = 4
K = 128


def pattern(sequence: int, layer: int, first: int, count: int) -> np.ndarray:
    tokens = np.arange(first, first + count, dtype=np.uint64)[:, None]
    columns = np.arange(ENTRY, dtype=np.uint64)[None, :]
    return ((tokens * 31 + columns * 7 + sequence * 13 + layer * 101) % 251).astype(np.uint8)


@pytest.fixture
def pool(daemon):
    client = sparsepool.Client(daemon.address)
    regions = sparsepool.GpuRegions()
    yield client, regions
    regions.close()
    client.close()


def prefill(client, tokens):
    seq = client.create_sequence(layers=LAYERS, entry_bytes=ENTRY, tokens=tokens)
    for layer in range(LAYERS):
        client.write(seq, layer, 0, pattern(seq, layer, 0, tokens))
    return seq


@pytest.mark.parametrize("cache_slots", [0, 256])
def test_a_step_captured_with_torch_cuda_graph_replays_while_contexts_grow(pool, cache_slots):
    client, regions = pool
    session = sparsepool.DecodeSession(client, regions, max_batch=BATCH, layers=LAYERS, entry_bytes=ENTRY, k=K,
                                       max_tokens=2048, cache_slots=cache_slots, buffers=LAYERS, reserve_tokens=128)
    first = prefill(client, 300)
    regions.register(client, first)
    assert regions.pinned_bytes > 0
    for seq, tokens in [(first, 300), (prefill(client, 64), 64), (prefill(client, 777), 777)]:
        session.join(seq, tokens)
    topk = torch.full((LAYERS, BATCH, K), -1, dtype=torch.int32, device="cuda")
    fresh = torch.zeros((LAYERS, BATCH, ENTRY), dtype=torch.uint8, device="cuda")
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        session.begin_step()
        for layer in range(LAYERS):
            session.write_layer(layer, fresh[layer])
            session.fetch_layer(layer, topk[layer])
        session.end_step()
    rng = np.random.default_rng(1)
    selected = 0
    for step in range(60):
        if step == 30:  # the batch changes under the same graph
            session.leave(1)
            session.join(prefill(client, 200), 200)
        assert session.prepare_step() == []
        host_topk = np.full((LAYERS, BATCH, K), -1, dtype=np.int32)
        host_fresh = np.zeros((LAYERS, BATCH, ENTRY), dtype=np.uint8)
        for row in range(BATCH):
            state = session.row(row)
            if not state.active:
                continue
            for layer in range(LAYERS):
                host_fresh[layer, row] = pattern(state.sequence, layer, state.tokens - 1, 1)[0]
                # The token this step appends, and distinct earlier ones (the cache takes
                # each token once per row).
                earlier = rng.choice(state.tokens - 1, size=min(K, state.tokens) - 1, replace=False)
                picks = np.concatenate([[state.tokens - 1], earlier])
                host_topk[layer, row, : len(picks)] = picks
                selected += len(picks)
        topk.copy_(torch.from_numpy(host_topk))
        fresh.copy_(torch.from_numpy(host_fresh))
        graph.replay()
        torch.cuda.synchronize()
        for layer in range(LAYERS):
            entries, flat = session.delivered(layer)
            flat = flat.cpu().numpy()
            for row in range(BATCH):
                state = session.row(row)
                for i in range(K):
                    token = host_topk[layer, row, i] if state.active else -1
                    if token < 0:
                        assert flat[row, i] == -1
                        continue
                    got = entries[flat[row, i]].cpu().numpy()
                    assert (got == pattern(state.sequence, layer, token, 1)[0]).all(), (step, layer, row, token)
    # Every selected entry was a hit or a miss of the cache (for the engine's metrics).
    if cache_slots:
        hits, misses = session.cache_counters()
        assert hits + misses == selected and misses > 0
    else:
        with pytest.raises(sparsepool.FailedPreconditionError, match="no residency cache"):
            session.cache_counters()
    session.close()


def test_a_sequence_released_under_the_session_is_reported(pool, daemon):
    client, regions = pool
    with sparsepool.DecodeSession(client, regions, max_batch=2, layers=LAYERS, entry_bytes=ENTRY, k=K,
                                  max_tokens=1024) as session:
        kept, doomed = prefill(client, 100), prefill(client, 100)
        session.join(kept, 100)
        row = session.join(doomed, 100)
        topk = torch.full((2, K), -1, dtype=torch.int32, device="cuda")
        fresh = torch.zeros((2, ENTRY), dtype=torch.uint8, device="cuda")

        def step():
            failures = session.prepare_step()
            session.begin_step()
            for layer in range(LAYERS):
                session.write_layer(layer, fresh)
                session.fetch_layer(layer, topk)
            session.end_step()
            torch.cuda.synchronize()
            return failures

        assert step() == []
        with sparsepool.Client(daemon.address) as other:
            other.release(doomed)
        assert step() == []  # the release is seen at this step's end...
        failures = step()  # ...and reported before the next
        assert [(f.row, f.sequence) for f in failures] == [(row, doomed)]
        assert isinstance(failures[0].error, sparsepool.NotFoundError)
        assert not session.row(row).active
        with pytest.raises(ValueError, match="topk holds"):
            session.fetch_layer(0, torch.zeros((1, K), dtype=torch.int32, device="cuda"))
        with pytest.raises(TypeError, match="topk has dtype torch.int64"):
            session.fetch_layer(0, torch.zeros((2, K), dtype=torch.int64, device="cuda"))
        with pytest.raises(sparsepool.InvalidArgumentError, match="layer 9 is out of range"):
            session.fetch_layer(9, topk)


def test_fetch_topk_into_a_cuda_tensor_over_the_clients_transport(pool):
    client, _ = pool
    seq = prefill(client, 200)
    indices = np.array([[7, -1, 199, 0, 64]], dtype=np.int32)
    out = torch.full((1, 5, ENTRY), 0xEE, dtype=torch.uint8, device="cuda")
    assert client.fetch_topk(2, [seq], indices, out) is out  # on torch's current stream
    got = out.cpu().numpy()  # waits for the stream
    for i, token in enumerate(indices[0]):
        want = np.zeros(ENTRY, dtype=np.uint8) if token < 0 else pattern(seq, 2, int(token), 1)[0]
        assert (got[0, i] == want).all(), (i, token)
    with pytest.raises(sparsepool.InvalidArgumentError, match="200"):
        client.fetch_topk(2, [seq], np.array([[200]], dtype=np.int32), out[:, :1])
