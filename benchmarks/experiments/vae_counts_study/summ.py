"""(0,1) leave-one-out mixture bits (as analyze.py), per phase; counts alone; fallback fraction."""
import numpy as np, sys, os
from paths import WORK
os.chdir(WORK)
names = ['urban_img_001.png','urban_img_027.png','wiki_001.png','wiki_015.png','wiki_028.png']
sizes = [1978368, 2359296, 2359296, 2073600, 2359296]; tot = sum(sizes)
for tag in sys.argv[1:]:
    C = [np.load(f'cost.{tag}.{n}.npy').sum(axis=(2, 3, 4)) for n in names]  # [3,7,15]
    allR = sum(C); loo = np.zeros((3, 7))
    for r in C:
        loo += np.take_along_axis(r, (allR - r).argmin(-1)[..., None], -1)[..., 0]
    side = [f'{WORK}side.{tag}.{n}.npy' for n in names]
    line = f'{tag:14s} mix(0,1)LOO {loo.sum() / tot:.4f}'
    if os.path.exists(side[0]):
        S = sum(np.load(p) for p in side)
        line += f'  counts {S[0].sum() / tot:.4f}  fallback {S[1].sum() / S[2].sum():.4f}'
        npx = S[2].sum(0)
        line += '\n   per-phase mix ' + ' '.join(f'{v:.3f}' for v in loo.sum(0) / npx)
        line += '\n   per-phase cnt ' + ' '.join(f'{v:.3f}' for v in S[0].sum(0) / npx)
        line += '\n   per-chan  mix ' + ' '.join(f'{v:.3f}' for v in loo.sum(1) / S[2].sum(1))
    else:
        line += '\n   per-phase mix*' + ' '.join(f'{v:.0f}' for v in loo.sum(0) / 1e3)
    print(line)
