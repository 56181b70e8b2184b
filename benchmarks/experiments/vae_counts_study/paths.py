"""Where the study reads and writes: the repository, the training photos, the 5 tuning files (the
every-10th files of images/train that training keeps apart), and a scratch folder for its arrays
(VAE_COUNTS_STUDY, default /tmp/vae_counts_study)."""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
TRAIN_DIR = str(REPO.parent / "shared" / "data" / "images" / "train")
TUNE = ['urban_img_001.png', 'urban_img_027.png', 'wiki_001.png', 'wiki_015.png', 'wiki_028.png']
WORK = os.environ.get("VAE_COUNTS_STUDY", "/tmp/vae_counts_study") + "/"
os.makedirs(WORK, exist_ok=True)
for p in (str(REPO), str(REPO / "benchmarks" / "experiments"), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)
