"""The PyTorch tutorial's feature-extractor / fine-tune loop on the digit folders.
python3 ft_torch.py SEED CROP(rrc|none) BN(train|eval) FREEZE(backbone|none) [SIZE=32] [EPOCHS=10]
                    [--data DIR] [--reseed] [--two-val]
BN=train: model.train() every epoch (the tutorial); BN=eval: the frozen backbone's BatchNorm in eval mode
(torchvision FrozenBatchNorm2d semantics, rtune's --frozen-bn eval default).
--data DIR: the folder with train/ and val/ (default /tmp/rrc/digits).
--reseed: torch.manual_seed(SEED) at every epoch: the same shuffle and the same crop per image each epoch.
--two-val: evaluate each epoch on two validation pipelines, A = the 32-px images as they are (T.Resize(32)
is the identity) and B = T.Resize(36) + T.CenterCrop(32), rtune's default for --image-size 32
(resize=S*256/224, center_crop=S: the tutorial's Resize(256) + CenterCrop(224) scaled down)."""
import sys, json, torch, torch.nn as nn, torchvision.transforms as T, torchvision.datasets as D
from common import TinyResNet

def flag(name, takes_value=False):
    if name not in sys.argv: return None if takes_value else False
    i = sys.argv.index(name); value = sys.argv[i + 1] if takes_value else True
    del sys.argv[i:i + (2 if takes_value else 1)]
    return value

data = flag("--data", True) or "/tmp/rrc/digits"; reseed = flag("--reseed"); two_val = flag("--two-val")
seed, crop, bn, freeze = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
S = int(sys.argv[5]) if len(sys.argv) > 5 else 32; E = int(sys.argv[6]) if len(sys.argv) > 6 else 10
torch.set_num_threads(1); torch.manual_seed(seed)
norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
first = T.RandomResizedCrop(S) if crop == "rrc" else T.Resize(S)
tr = D.ImageFolder(f"{data}/train", T.Compose([first, T.RandomHorizontalFlip(), T.ToTensor(), norm]))
vals = {"A": D.ImageFolder(f"{data}/val", T.Compose([T.Resize(S), T.ToTensor(), norm]))}
if two_val: vals["B"] = D.ImageFolder(f"{data}/val", T.Compose([T.Resize(36), T.CenterCrop(32), T.ToTensor(), norm]))
m = TinyResNet(16, 20); m.load_state_dict(torch.load("/tmp/rrc/letters_r18w16.pth"))
m.fc = nn.Linear(m.fc.in_features, 10)
params = m.fc.parameters() if freeze == "backbone" else m.parameters()
if freeze == "backbone":
    for n, p in m.named_parameters(): p.requires_grad = n.startswith("fc.")
opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
accs = {k: [] for k in vals}
for e in range(E):
    if reseed: torch.manual_seed(seed)
    m.train()
    if bn == "eval":
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d): mod.eval()
    for x, y in torch.utils.data.DataLoader(tr, 32, shuffle=True):
        opt.zero_grad(); nn.functional.cross_entropy(m(x), y).backward(); opt.step()
    m.eval()
    with torch.no_grad():
        for k, va in vals.items():
            c = sum((m(x).argmax(1) == y).sum().item() for x, y in torch.utils.data.DataLoader(va, 200))
            accs[k].append(round(c / len(va), 4))
out = {"seed": seed, "crop": crop, "bn": bn, "freeze": freeze, "size": S, "best": max(accs["A"]), "accs": accs["A"]}
if two_val:
    out = {"tool": "torch", "data": data.rstrip("/").split("/")[-1], "seed": seed, "crop": crop, "bn": bn,
           "bestA": max(accs["A"]), "bestB": max(accs["B"]), "A": accs["A"], "B": accs["B"]}
print(json.dumps(out), flush=True)
