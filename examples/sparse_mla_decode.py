"""A DeepSeek-V3.2-shaped sparse MLA decode over sparsepool, checked against the same
attention over the whole cache kept in memory.

A "prefill" process writes each request's latent cache in FlashMLA's FP8 layout (656
bytes per token and layer: 512 float8 e4m3 values, 4 float32 scales, one per 128 values,
64 bfloat16 RoPE values) and exits; a "decode" process adopts the sequences and runs
decode steps: each step appends one token per request and layer, an indexer picks the
top-k of every layer, the pool delivers those entries, and attention runs over them. The
same attention also runs over a copy of the whole cache kept in memory ("HBM"), indexed
by the same top-k: the delivered bytes must be identical and the outputs equal.

    python3 examples/sparse_mla_decode.py --address=HOST:PORT [--device=cuda] [...]

On CUDA the decode uses DecodeSession: the whole step (every layer's write, fetch and
attention) is captured once with torch.cuda.graph and replayed every step. On the CPU it
uses the client's fetch_topk. Prints one line per check and a summary; exits 1 on a
mismatch.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch

import sparsepool

ENTRY_BYTES = 656
LATENT = 512
ROPE = 64
GROUP = 128  # values per FP8 scale


# ---- FlashMLA's FP8 entry layout, encoded and decoded with integer tables (works on
# torch versions without float8 dtypes) ----


def _e4m3_values() -> torch.Tensor:
    """The value of every e4m3 (fn) byte; NaN codes map to 0 (never produced here)."""
    values = []
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exponent = (code >> 3) & 0xF
        mantissa = code & 0x7
        if (code & 0x7F) == 0x7F:
            values.append(0.0)
        elif exponent == 0:
            values.append(sign * mantissa / 8.0 * 2.0 ** -6)
        else:
            values.append(sign * (1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7))
    return torch.tensor(values, dtype=torch.float32)


E4M3 = _e4m3_values()
_POSITIVE = E4M3[:127]  # codes 0..126: the finite non-negative values, ascending
_E4M3_ON = {}


def e4m3_table(device: torch.device) -> torch.Tensor:
    """The decode table on `device` (made once: a CUDA graph cannot copy it in)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # "cuda" and "cuda:0" are one table
    key = str(device)
    if key not in _E4M3_ON:
        _E4M3_ON[key] = E4M3.to(device)
    return _E4M3_ON[key]


def encode_entries(latent: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """uint8 [n, 656] from float32 latent [n, 512] and rope [n, 64]."""
    n = latent.shape[0]
    groups = latent.reshape(n, LATENT // GROUP, GROUP)
    scales = groups.abs().amax(dim=2).clamp(min=1e-12) / 448.0
    scaled = (groups / scales[:, :, None]).reshape(n, LATENT)
    magnitude = scaled.abs().clamp(max=448.0)
    upper = torch.searchsorted(_POSITIVE, magnitude).clamp(max=126)
    lower = (upper - 1).clamp(min=0)
    nearer_lower = (magnitude - _POSITIVE[lower]).abs() <= (_POSITIVE[upper] - magnitude).abs()
    codes = torch.where(nearer_lower, lower, upper) | ((scaled < 0).to(torch.int64) << 7)
    out = torch.empty((n, ENTRY_BYTES), dtype=torch.uint8)
    out[:, :LATENT] = codes.to(torch.uint8)
    out[:, LATENT:LATENT + 16] = _bytes_of(scales.to(torch.float32).contiguous(), 4)
    bf16_bits = (rope.to(torch.float32).contiguous().view(torch.int32) >> 16) & 0xFFFF  # truncation to bfloat16
    out[:, LATENT + 16:] = _little_endian_bytes(bf16_bits, 2)
    return out


def decode_entries(entries: torch.Tensor):
    """float32 latent [..., 512] and rope [..., 64] from uint8 [..., 656]."""
    codes = entries[..., :LATENT].to(torch.int64)
    scale_bits = _from_little_endian(entries[..., LATENT:LATENT + 16], 4)
    scales = scale_bits.to(torch.int32).view(torch.float32)
    latent = e4m3_table(entries.device)[codes].reshape(*entries.shape[:-1], LATENT // GROUP, GROUP)
    latent = (latent * scales[..., None]).reshape(*entries.shape[:-1], LATENT)
    rope_bits = _from_little_endian(entries[..., LATENT + 16:], 2)
    rope = (rope_bits << 16).to(torch.int32).view(torch.float32)
    return latent, rope


def _little_endian_bytes(values: torch.Tensor, width: int) -> torch.Tensor:
    v = values.to(torch.int64)
    return torch.stack([(v >> (8 * i)) & 0xFF for i in range(width)], dim=-1).reshape(*v.shape[:-1], -1).to(torch.uint8)


def _bytes_of(values: torch.Tensor, width: int) -> torch.Tensor:
    return _little_endian_bytes(values.view(torch.int32), width)


def _from_little_endian(data: torch.Tensor, width: int) -> torch.Tensor:
    d = data.to(torch.int64).reshape(*data.shape[:-1], -1, width)
    value = torch.zeros(d.shape[:-1], dtype=torch.int64, device=data.device)
    for i in range(width):
        value |= d[..., i] << (8 * i)
    return value


# ---- the model's pieces, deterministic stand-ins of the right shapes ----


def token_entries(seed: int, sequence_index: int, layer: int, first: int, count: int) -> torch.Tensor:
    """The cache entries of tokens [first, first + count): what a model's projection would
    produce, drawn from a generator keyed by (request, layer, first token). The reference
    cache is built with the same calls as the pool's writes, so both hold the same bytes."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + sequence_index * 10_007 + layer * 1_009 + first)
    return encode_entries(torch.randn((count, LATENT), generator=g), torch.randn((count, ROPE), generator=g))


def mla_attention(query: torch.Tensor, entries: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Absorbed MLA over selected entries: query [B, H, 576], entries uint8 [B, K, 656],
    valid bool [B, K] -> output [B, H, 512]."""
    latent, rope = decode_entries(entries)
    scores = (torch.einsum("bhd,bkd->bhk", query[..., :LATENT], latent)
              + torch.einsum("bhd,bkd->bhk", query[..., LATENT:], rope)) / math.sqrt(LATENT + ROPE)
    scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
    return torch.einsum("bhk,bkd->bhd", torch.softmax(scores, dim=-1), latent)


# ---- the two processes ----


def prefill(args) -> None:
    """Writes each request's prompt cache and prints the sequence ids (JSON)."""
    client = sparsepool.Client(args.address, client_id=f"prefill-{os.getpid()}")
    ids = []
    for r, tokens in enumerate(args.contexts):
        sequence = client.create_sequence(layers=args.layers, entry_bytes=ENTRY_BYTES, tokens=tokens, tenant="example")
        for layer in range(args.layers):
            client.write(sequence, layer, 0, token_entries(args.seed, r, layer, 0, tokens))
        ids.append(sequence)
    print(json.dumps(ids), flush=True)
    client.close()  # the sequences live on: the decode process adopts them


def decode(args, ids) -> int:
    device = torch.device(args.device)
    client = sparsepool.Client(args.address, client_id=f"decode-{os.getpid()}")
    for sequence in ids:
        client.adopt(sequence)
    batch, layers, k = len(ids), args.layers, args.k
    max_tokens = max(args.contexts) + args.steps + 1
    # The whole cache, kept in memory: the reference the pool is checked against.
    hbm = torch.zeros((batch, layers, max_tokens, ENTRY_BYTES), dtype=torch.uint8)
    for r, tokens in enumerate(args.contexts):
        for layer in range(layers):
            hbm[r, layer, :tokens] = token_entries(args.seed, r, layer, 0, tokens)
    hbm = hbm.to(device)
    tokens = list(args.contexts)
    generator = torch.Generator().manual_seed(args.seed + 1)
    session = None
    if device.type == "cuda":
        regions = sparsepool.GpuRegions()
        regions.register(client, ids[0])  # warm-up: pin the pool's region before the first step
        session = sparsepool.DecodeSession(client, regions, max_batch=batch, layers=layers, entry_bytes=ENTRY_BYTES,
                                           k=k, max_tokens=max_tokens, cache_slots=args.cache_slots,
                                           buffers=layers)
        rows = [session.join(sequence, t) for sequence, t in zip(ids, tokens)]
        assert rows == list(range(batch))
        static_topk = torch.full((layers, batch, k), -1, dtype=torch.int32, device=device)
        static_new = torch.zeros((layers, batch, ENTRY_BYTES), dtype=torch.uint8, device=device)
        static_query = torch.zeros((layers, batch, args.heads, LATENT + ROPE), device=device)
        static_out = torch.zeros((layers, batch, args.heads, LATENT), device=device)
        static_rows = torch.zeros((layers, batch, k, ENTRY_BYTES), dtype=torch.uint8, device=device)
        e4m3_table(device)  # the decode table on the GPU before the capture
        # Library handles (cuBLAS for the einsums) are made on first use, which a capture
        # cannot do: run the attention once before capturing it.
        mla_attention(static_query[0], static_rows[0], torch.ones((batch, k), dtype=torch.bool, device=device))
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            session.begin_step()
            for layer in range(layers):
                session.write_layer(layer, static_new[layer])
                session.fetch_layer(layer, static_topk[layer])
                entries, flat = session.delivered(layer)
                static_rows[layer] = entries[flat.clamp(min=0).long()]
                static_out[layer] = mla_attention(static_query[layer], static_rows[layer], flat >= 0)
            session.end_step()
    checked_entries = 0
    worst = 0.0
    for step in range(args.steps):
        # The new token of every request and layer, and the indexer's top-k (it may pick
        # the new token: attention reads the current token too).
        new = torch.stack([torch.stack([token_entries(args.seed + 7, r, layer, tokens[r], 1)[0]
                                        for r in range(batch)]) for layer in range(layers)])
        topk = torch.full((layers, batch, k), -1, dtype=torch.int32)
        for r in range(batch):
            scores = torch.rand((layers, tokens[r] + 1), generator=generator)
            picked = torch.topk(scores, min(k, tokens[r] + 1), dim=1).indices.to(torch.int32)
            topk[:, r, :picked.shape[1]] = picked
        query = torch.randn((layers, batch, args.heads, LATENT + ROPE), generator=generator)
        for r in range(batch):
            hbm[r, :, tokens[r]] = new[:, r].to(device)
        if session is not None:
            failures = session.prepare_step()
            if failures:
                print(f"step {step}: {failures}")
                return 1
            static_new.copy_(new)
            static_topk.copy_(topk)
            static_query.copy_(query)
            graph.replay()
            torch.cuda.synchronize()
            delivered, outputs = static_rows, static_out
        else:
            for r, sequence in enumerate(ids):
                client.extend(sequence, tokens[r] + 1)
                for layer in range(layers):
                    client.write(sequence, layer, tokens[r], new[layer, r:r + 1].contiguous())
            delivered = torch.zeros((layers, batch, k, ENTRY_BYTES), dtype=torch.uint8)
            outputs = torch.zeros((layers, batch, args.heads, LATENT))
            for layer in range(layers):
                client.fetch_topk(layer, ids, topk[layer].contiguous(), delivered[layer])
                outputs[layer] = mla_attention(query[layer], delivered[layer], topk[layer] >= 0)
        for r in range(batch):
            tokens[r] += 1
        # The same attention over the cache kept in memory, by the same top-k.
        valid = (topk >= 0).to(device)
        index = topk.clamp(min=0).long().to(device)
        for layer in range(layers):
            reference_rows = torch.stack([hbm[r, layer][index[layer, r]] for r in range(batch)])
            reference_rows = reference_rows * valid[layer][..., None].to(torch.uint8)
            got_rows = delivered[layer].to(device) * valid[layer][..., None].to(torch.uint8)
            if not torch.equal(got_rows, reference_rows):
                print(f"step {step} layer {layer}: the delivered entries differ from the cache")
                return 1
            checked_entries += int(valid[layer].sum())
            reference = mla_attention(query[layer].to(device), reference_rows, valid[layer])
            error = ((outputs[layer].to(device) - reference).norm() / reference.norm()).item()
            worst = max(worst, error)
            if not error <= args.tolerance:
                print(f"step {step} layer {layer}: output differs by {error:.3g} (tolerance {args.tolerance})")
                return 1
    print(f"sparse MLA decode on {args.device}: {args.steps} steps x {layers} layers x {batch} requests, "
          f"contexts {args.contexts[0]}-{max(args.contexts)} growing to {max(tokens)}, top-{k}: "
          f"{checked_entries} delivered entries identical to the cache's, outputs within {worst:.3g} "
          f"(tolerance {args.tolerance})")
    for sequence in ids:
        client.release(sequence)
    if session is not None:
        session.close()
    client.close()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--role", choices=["both", "prefill"], default="both")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--contexts", type=lambda s: [int(x) for x in s.split(",")], default=[200, 333])
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--cache_slots", type=int, default=0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)
    if args.role == "prefill":
        prefill(args)
        return 0
    # The prefill runs in a process of its own, which exits before the decode starts.
    command = [sys.executable, os.path.abspath(__file__), "--role=prefill", f"--address={args.address}",
               f"--layers={args.layers}", f"--contexts={','.join(map(str, args.contexts))}", f"--seed={args.seed}"]
    started = time.monotonic()
    ids = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    print(f"prefill process wrote {len(ids)} sequences in {time.monotonic() - started:.1f} s and exited")
    return decode(args, ids)


if __name__ == "__main__":
    sys.exit(main())
