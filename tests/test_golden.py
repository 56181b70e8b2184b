"""Committed .nz files, one per model, still decode to the recorded content."""

import hashlib
import json
from pathlib import Path

import pytest

from neuralzip import api, container
from neuralzip.models import all_codecs

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())


def test_every_model_has_a_golden_file():
    shipped = {f"{c.name}-{c.kind}.nz" for c in all_codecs() if c.name != "float-control"}
    assert shipped <= set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_file_decodes(name):
    [(stored, restored)] = api.decompress_bytes((GOLDEN / name).read_bytes())
    assert stored == EXPECTED[name]["restores"]
    assert hashlib.sha256(restored).hexdigest() == EXPECTED[name]["sha256"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_source_reencodes_to_the_same_bytes(name):
    """The format did not move: coding the restored file again with the recorded model writes
    the committed file byte for byte."""
    blob = (GOLDEN / name).read_bytes()
    _, [member] = container.loads(blob)
    [(stored, restored)] = api.decompress_bytes(blob)
    assert api.compress_bytes(restored, stored, member.model) == blob
