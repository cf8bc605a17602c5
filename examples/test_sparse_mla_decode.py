"""The sparse MLA decode example, CPU variant, against a real daemon (CI runs it; the
device machine runs the CUDA variant, whose step torch.cuda.graph captures)."""

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python" / "tests"))

from daemon import Daemon  # noqa: E402
import sparse_mla_decode  # noqa: E402


@pytest.fixture
def daemon():
    d = Daemon("example")
    d.start()
    yield d
    d.stop()


def test_the_example_decodes_over_the_pool_as_over_the_whole_cache(daemon, capsys):
    code = sparse_mla_decode.main([f"--address={daemon.address}", "--layers=3", "--contexts=150,257,64",
                                   "--k=48", "--heads=2", "--steps=6"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "delivered entries identical to the cache's" in printed
    assert "prefill process wrote 3 sequences" in printed


def test_fp8_entries_round_trip_their_layout():
    torch = pytest.importorskip("torch")
    latent = torch.randn(5, 512) * 3
    rope = torch.randn(5, 64)
    entries = sparse_mla_decode.encode_entries(latent, rope)
    assert entries.shape == (5, 656) and entries.dtype == torch.uint8
    decoded_latent, decoded_rope = sparse_mla_decode.decode_entries(entries)
    # e4m3 keeps 3 mantissa bits: within 1/16 of each group's scale-relative magnitude.
    assert ((decoded_latent - latent).abs() <= latent.abs() / 15 + 1e-3 * latent.abs().max()).all()
    assert ((decoded_rope - rope).abs() <= rope.abs() / 128 + 1e-6).all()  # bfloat16 truncation
    assert sparse_mla_decode.E4M3[0x38].item() == 1.0 and sparse_mla_decode.E4M3[0x7E].item() == 448.0
