"""The PyTorch loop of ft_torch.py, evaluated each epoch on two validation pipelines:
A = the 32-px images as they are (T.Resize(32) is the identity), B = T.Resize(36) + T.CenterCrop(32),
which is rtune's default for --image-size 32 (resize=S*256/224, center_crop=S; the tutorial's
Resize(256) + CenterCrop(224) scaled down).
python3 ft_torch4.py DATA SEED CROP(rrc|none) BN(train|eval) [EPOCHS=10]"""
import sys, json, torch, torch.nn as nn, torchvision.transforms as T, torchvision.datasets as D
from common import TinyResNet
data, seed, crop, bn = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
E = int(sys.argv[5]) if len(sys.argv) > 5 else 10
torch.set_num_threads(1); torch.manual_seed(seed)
norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
first = T.RandomResizedCrop(32) if crop == "rrc" else T.Resize(32)
tr = D.ImageFolder(f"{data}/train", T.Compose([first, T.RandomHorizontalFlip(), T.ToTensor(), norm]))
vals = {"A": D.ImageFolder(f"{data}/val", T.Compose([T.Resize(32), T.ToTensor(), norm])),
        "B": D.ImageFolder(f"{data}/val", T.Compose([T.Resize(36), T.CenterCrop(32), T.ToTensor(), norm]))}
m = TinyResNet(16, 20); m.load_state_dict(torch.load("/tmp/rrc/letters_r18w16.pth"))
m.fc = nn.Linear(m.fc.in_features, 10)
for n, p in m.named_parameters(): p.requires_grad = n.startswith("fc.")
opt = torch.optim.SGD(m.fc.parameters(), lr=0.01, momentum=0.9)
accs = {"A": [], "B": []}
for e in range(E):
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
print(json.dumps({"tool": "torch", "data": data.split("/")[-1], "seed": seed, "crop": crop, "bn": bn,
                  "bestA": max(accs["A"]), "bestB": max(accs["B"]), "A": accs["A"], "B": accs["B"]}), flush=True)
