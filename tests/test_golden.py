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
def test_golden_source_reencodes_to_the_same_member(name):
    """The format did not move: coding the restored file again with the recorded model gives the
    committed member: the same chunks byte for byte and the same header entry. Only the
    likelihood figures ("stats", a report, not the format) may differ: golden files made
    before they were rounded to 1/1000 bit carry full precision, and wavenet's now count the
    blocks' side bits too."""
    blob = (GOLDEN / name).read_bytes()
    _, [member] = container.loads(blob)
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, member.model))
    assert again.chunks == member.chunks
    assert {k: v for k, v in again.header().items() if k != "stats"} == \
        {k: v for k, v in member.header().items() if k != "stats"}
    assert again.stats.keys() == member.stats.keys()
