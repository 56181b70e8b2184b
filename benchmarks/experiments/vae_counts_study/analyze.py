import numpy as np, sys, os
from paths import WORK
os.chdir(WORK)
names = ['urban_img_001.png','urban_img_027.png','wiki_001.png','wiki_015.png','wiki_028.png']
sizes = [1978368, 2359296, 2359296, 2073600, 2359296]
tag = sys.argv[1] if len(sys.argv) > 1 else 'base'
C = [np.load(f'cost.{tag}.{n}.npy') for n in names]
tot = sum(sizes)
fixed = sum(c[..., 7].sum() for c in C) / tot  # w=8/16
print('fixed 8/16', round(fixed, 4))
def table_eval(axes_keep):
    # static table over kept axes (others pooled), leave-one-out and in-sample
    def reduce(c):
        drop = tuple(i for i in range(c.ndim - 1) if i not in axes_keep)
        return c.sum(axis=drop)
    Rs = [reduce(c) for c in C]
    allR = sum(Rs)
    ins = sum(np.take_along_axis(r, allR.argmin(-1)[..., None], -1).sum() for r in Rs) / tot
    loo = 0
    for i, r in enumerate(Rs):
        tr = allR - r
        loo += np.take_along_axis(r, tr.argmin(-1)[..., None], -1).sum()
    perphoto = sum(np.take_along_axis(r, r.argmin(-1)[..., None], -1).sum() for r in Rs) / tot
    return round(ins, 4), round(loo / tot, 4), round(perphoto, 4)
for keep in [(), (0,), (1,), (2,), (3,), (4,), (0, 1), (1, 3), (1, 4), (3, 4), (0, 1, 3), (1, 3, 4), (0, 1, 3, 4), (0, 1, 2, 3, 4)]:
    print(keep, 'in-sample, leave-one-out, per-photo table:', table_eval(keep))
