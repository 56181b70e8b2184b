"""Where does a network from the other source lose? (stop 62; a measurement)

    PYTHONPATH=. python benchmarks/experiments/split_where.py OTHER.npz OWN.npz PHOTO...

Codes each photo with local-ls-mlp at level 2 under each network and splits the exact model's
bits (symbols under the coded rows, plus low bits) by channel and by activity class, printing
the other network's bits against the own one's.
"""
import sys

import numpy as np
from rows_hook import run_with_hook, whole

from neuralzip.coding import buckets
from neuralzip.models.classic_image import NCLS


def per_class(weights, img):
    """-> (bits [channel, activity class], subpixels [channel, activity class])."""
    bits_by_class, subpixels = np.zeros((3, NCLS)), np.zeros((3, NCLS))

    def on_step(view, sym, rows):
        n = len(sym)
        b = -np.log2(rows[np.arange(n), sym] / rows.sum(1)) + buckets.low_bit_counts(sym)
        np.add.at(bits_by_class[view.c], view.classes[:n], b)
        np.add.at(subpixels[view.c], view.classes[:n], 1)

    run_with_hook("local-ls-mlp", 2, img, on_step, weights)
    return bits_by_class, subpixels


def main():
    other, own = sys.argv[1], sys.argv[2]
    for path in sys.argv[3:]:
        img = whole(path)
        au, cnt = per_class(other, img)
        aw, _ = per_class(own, img)
        print(path.split('/')[-1], 'total other/own %.4f' % (au.sum() / aw.sum()))
        for c in range(3):
            print('  channel', c, 'share of bits %.3f' % (aw[c].sum() / aw.sum()), 'other/own %.4f' % (au[c].sum() / aw[c].sum()))
        # by activity class groups
        for lo, hi in ((0, 6), (6, 12), (12, 18), (18, 24), (24, 29)):
            su, sw, n = au[:, lo:hi].sum(), aw[:, lo:hi].sum(), cnt[:, lo:hi].sum()
            if n: print('  classes %2d-%2d: subpixels %.3f, bits/subpixel %.3f, other/own %.4f, excess share %.3f' % (lo, hi - 1, n / cnt.sum(), sw / n, su / sw, (su - sw) / (au.sum() - aw.sum())))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
