"""PyTorch counterpart of bench_loader: torchvision ImageFolder + DataLoader over the same folder with
the same transforms, batch size and worker count, printing img/s for the same passes:

  decode only       ImageFolder(transform=PILToTensor()): PIL open + convert("RGB") + to uint8 tensor
                    (needs one image size in the folder, as bench/make_jpeg_folder.py makes)
  train transforms  RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize (imagenet-train),
                    float batches, as a torchvision training script feeds a model
  train uint8       the same crop and flip, then PILToTensor: uint8 batches, what rtune's loader hands
                    over (it leaves ToTensor/Normalize to the consumer, e.g. the GPU)
  eval, eval_uint8  (only when asked for in --passes) Resize(256) + CenterCrop(224), float normalised or
                    uint8: compare with bench_loader --transforms imagenet-eval
  jitter, jitter_uint8  (only when asked for) the train transforms + ColorJitter(0.4, 0.4, 0.4, 0.1):
                    compare with --transforms random_resized_crop=224,hflip,jitter=0.4:0.4:0.4:0.1
  (PyTorch has no decoded cache: epoch 2 costs what epoch 1 costs.)

Usage: python3 bench/pytorch_loader.py --data DIR [--workers N] [--batch B] [--images N]
                                     [--passes decode,train,train_uint8[,eval,eval_uint8,jitter,jitter_uint8]]
The last line is JSON. Run it after bench_loader (or twice) so both read the files from the page cache.
img/s counts from the first batch to the end of the epoch (both benches); img per CPU-second counts the
whole epoch's CPU time of the process and its workers.
"""
import argparse
import json
import resource
import time

import PIL
import torch
import torchvision
from torch.utils.data import DataLoader, Subset
from torchvision import datasets
from torchvision import transforms as T


def cpu_seconds():
    """User + system CPU of this process and its reaped children (the DataLoader workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def epoch_img_s(ds, workers, batch, seed):
    """(img/s of wall time, img per CPU-second of the main process and the workers)."""
    g = torch.Generator()
    g.manual_seed(seed)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, generator=g,
                        persistent_workers=False, drop_last=False)
    c0 = cpu_seconds()
    n = n_first = 0
    it = iter(loader)
    for x, _ in it:
        if n == 0:  # wall time from the first batch on: leaves out starting the worker processes
            t0, n_first = time.perf_counter(), x.shape[0]
        n += x.shape[0]
    dt = time.perf_counter() - t0
    del it  # joins the workers, so that their CPU time is counted
    dc = cpu_seconds() - c0
    assert n == len(ds), (n, len(ds))
    return (n - n_first) / dt, n / dc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=0, help="use only the first N images (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--passes", default="decode,train,train_uint8")
    a = ap.parse_args()
    torch.set_num_threads(1)  # the workers do the work; one intra-op thread each, like rtune's workers

    normalize = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    tfs = {
        "decode": T.PILToTensor(),
        "train": T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), normalize]),
        "train_uint8": T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.PILToTensor()]),
        "eval": T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), normalize]),
        "eval_uint8": T.Compose([T.Resize(256), T.CenterCrop(224), T.PILToTensor()]),
        "jitter": T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4, 0.1),
                             T.ToTensor(), normalize]),
        "jitter_uint8": T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4, 0.1),
                                   T.PILToTensor()]),
    }
    passes = [p for p in a.passes.split(",") if p]
    result = {"bench": "pytorch_loader", "torch": torch.__version__, "torchvision": torchvision.__version__,
              "pillow": PIL.__version__, "workers": a.workers, "batch": a.batch}
    print(f"pytorch loader: torch {torch.__version__}, torchvision {torchvision.__version__}, Pillow {PIL.__version__}, "
          f"{a.workers} workers, batch {a.batch}")
    for p in passes:
        ds = datasets.ImageFolder(a.data, transform=tfs[p])
        if a.images > 0:
            ds = Subset(ds, range(min(a.images, len(ds))))
        result["images"] = len(ds)
        r, rc = epoch_img_s(ds, a.workers, a.batch, a.seed)
        result[f"{p}_img_s"] = round(r, 1)
        result[f"{p}_img_cpu_s"] = round(rc, 1)
        print(f"  {p:12s} {r:9.1f} img/s  ({rc:.1f} img per CPU-second, {len(ds)} images)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
