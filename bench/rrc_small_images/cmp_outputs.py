"""Output pixels of the whole training pipeline, rtune's loader vs torchvision, on a folder of 32-px images:
per output image, the mean value and the fraction of pixels > 127 (channel 0), E epochs each."""
import sys, subprocess, numpy as np, torch, torchvision.transforms as T, torchvision.datasets as D
root, E = sys.argv[1], int(sys.argv[2])
r = np.loadtxt(subprocess.run(["./loader_stats", root, "random_resized_crop=32,hflip", str(E)], capture_output=True, text=True).stdout.splitlines())
torch.manual_seed(0)
ds = D.ImageFolder(root, T.Compose([T.RandomResizedCrop(32), T.RandomHorizontalFlip()]))
t = []
for e in range(E):
    for i in range(len(ds)):
        a = np.asarray(ds[i][0])[:, :, 0].astype(float); t.append((a.mean(), (a > 127).mean()))
t = np.array(t)
plain = np.array([(a.mean(), (a > 127).mean()) for a in (np.asarray(D.ImageFolder(root)[i][0])[:, :, 0].astype(float) for i in range(len(ds)))])
for name, a in (("rtune loader", r), ("torchvision", t), ("no crop", plain)):
    print(f"{name:13s} n {len(a):6d}  mean pixel {a[:,0].mean():7.3f} (sd {a[:,0].std():6.3f})  frac>127 {a[:,1].mean():.4f} (sd {a[:,1].std():.4f})"
          f"  p10/p50/p90 of frac {np.percentile(a[:,1],10):.3f}/{np.percentile(a[:,1],50):.3f}/{np.percentile(a[:,1],90):.3f}")
se = np.sqrt(r[:,0].var()/len(r) + t[:,0].var()/len(t))
print(f"difference of mean pixel rtune - torchvision: {r[:,0].mean()-t[:,0].mean():+.3f} ({(r[:,0].mean()-t[:,0].mean())/se:+.2f} standard errors)")
