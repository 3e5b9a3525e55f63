"""RandomResizedCrop's PIL path vs its tensor path on the 32-px digits: same boxes, |difference| in 0..255."""
import glob, numpy as np, torch, torchvision.transforms.functional as F, torchvision.transforms as T
from PIL import Image
torch.manual_seed(0)
files = sorted(glob.glob("/tmp/rrc/clean/val/*/*.png"))[::6] + sorted(glob.glob("/tmp/rrc/digits/val/*/*.png"))[::6]
for S in (32, 224):
    d_u8, d_f = [], []
    for f in files:
        im = Image.open(f).convert("RGB")
        i, j, h, w = T.RandomResizedCrop.get_params(im, [0.08, 1.0], [3 / 4, 4 / 3])
        p = np.asarray(F.resized_crop(im, i, j, h, w, [S, S])).astype(float)
        t = F.pil_to_tensor(im)
        tu = F.resized_crop(t, i, j, h, w, [S, S], antialias=True).permute(1, 2, 0).numpy().astype(float)
        tf = (F.resized_crop(t.float() / 255, i, j, h, w, [S, S], antialias=True).permute(1, 2, 0).numpy() * 255)
        d_u8.append(np.abs(p - tu)); d_f.append(np.abs(p - tf))
    d_u8, d_f = np.stack(d_u8), np.stack(d_f)
    print(f"out {S}: {len(files)} images; PIL vs uint8 tensor: mean |d| {d_u8.mean():.2f}, p99 {np.percentile(d_u8, 99):.0f}, max {d_u8.max():.0f}; "
          f"PIL vs float tensor: mean {d_f.mean():.2f}, max {d_f.max():.1f}")
