"""Quick likelihood experiments for the image model (train images only, centre crops)."""
import sys, time, json
import numpy as np
from pathlib import Path
from PIL import Image
import types, neuralzip
_pkg = types.ModuleType("neuralzip.models"); _pkg.__path__ = [str(Path(neuralzip.__file__).parent / "models")]
sys.modules["neuralzip.models"] = _pkg  # skip the registry (other models may be mid-edit)
from neuralzip.coding.stream import CostCoder
from neuralzip.models import classic_image as ci

TRAIN = sorted(Path("/work/shared/data/images/train").glob("*.png"))
files = [f for f in TRAIN if f.name in ("urban_img_003.png", "urban_img_015.png", "wiki_002.png", "wiki_011.png", "wiki_020.png", "urban_img_019.png")]
if not files:
    files = TRAIN[:6]
CROP = int(sys.argv[1]) if len(sys.argv) > 1 else 384
configs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {"classic": None}
prior = ci.ClassicImageCodec().prior
res = {}
for name, cfg in configs.items():
    tot, dims, t0 = 0.0, 0, time.process_time()
    for f in files:
        im = np.asarray(Image.open(f).convert("RGB"))
        h, w = im.shape[:2]
        y0, x0 = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
        img = np.ascontiguousarray(im[y0:y0 + CROP, x0:x0 + CROP], np.int64)
        coder = CostCoder()
        cfg = cfg or {}
        th, tw = cfg.get("tile", (ci.TILE_H, ci.TILE_W))
        ci._code_chunk(img, 8, coder, None, th, tw, prior, ols=cfg.get("ols"), mixing=cfg.get("mixing", False))
        tot += coder.bits
        dims += img.size
    res[name] = round(tot / dims, 4)
    print(name, res[name], f"{time.process_time() - t0:.1f}s", flush=True)
