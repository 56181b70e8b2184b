import sys, json, types
from pathlib import Path
import numpy as np
from PIL import Image
import neuralzip
_pkg = types.ModuleType("neuralzip.models"); _pkg.__path__ = [str(Path(neuralzip.__file__).parent / "models")]
sys.modules["neuralzip.models"] = _pkg
from neuralzip.coding.stream import CostCoder
from neuralzip.models import classic_image as ci
cfg = json.loads(sys.argv[1])
f = Path("/work/shared/data/images/train") / (sys.argv[2] if len(sys.argv) > 2 else "wiki_002.png")
im = np.asarray(Image.open(f).convert("RGB"))
h, w = im.shape[:2]; C = 256
img = np.ascontiguousarray(im[(h-C)//2:(h-C)//2+C, (w-C)//2:(w-C)//2+C], np.int64)
cap = []
orig = ci._ChunkState
class Cap(orig):
    def __init__(self, *a, **k):
        super().__init__(*a, **k); cap.append(self)
ci._ChunkState = Cap
coder = CostCoder()
ci._code_chunk(img, 8, coder, None, 100000, 100000, ci.ClassicImageCodec().prior, ols=cfg)
st = cap[0]
print("bpsp", coder.bits / img.size)
for c in range(3):
    pe = st.perr[4:, 4:-4, c].astype(float)
    fe = st.ferr[4:, 4:-4, c].astype(float)
    print(c, "final", fe.mean().round(3), "ols", pe[..., -1].mean().round(3), "best classic", pe[..., :-1].mean(axis=(0, 1)).min().round(3))
