"""The PyTorch tutorial's feature-extractor / fine-tune loop on the digit folders.
python3 ft_torch.py SEED CROP(rrc|none) BN(train|eval) FREEZE(backbone|none) [SIZE=32] [EPOCHS=10]
BN=train: model.train() every epoch (the tutorial); BN=eval: the frozen backbone's BatchNorm in eval mode
(torchvision FrozenBatchNorm2d semantics, rtune's --frozen-bn eval default)."""
import sys, json, torch, torch.nn as nn, torchvision.transforms as T, torchvision.datasets as D
from common import TinyResNet
seed, crop, bn, freeze = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
S = int(sys.argv[5]) if len(sys.argv) > 5 else 32; E = int(sys.argv[6]) if len(sys.argv) > 6 else 10
torch.set_num_threads(1); torch.manual_seed(seed)
norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
first = T.RandomResizedCrop(S) if crop == "rrc" else T.Resize(S)
tr = D.ImageFolder("/tmp/rrc/digits/train", T.Compose([first, T.RandomHorizontalFlip(), T.ToTensor(), norm]))
va = D.ImageFolder("/tmp/rrc/digits/val", T.Compose([T.Resize(S), T.ToTensor(), norm]))
m = TinyResNet(16, 20); m.load_state_dict(torch.load("/tmp/rrc/letters_r18w16.pth"))
m.fc = nn.Linear(m.fc.in_features, 10)
params = m.fc.parameters() if freeze == "backbone" else m.parameters()
if freeze == "backbone":
    for n, p in m.named_parameters(): p.requires_grad = n.startswith("fc.")
opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
best = 0; accs = []
for e in range(E):
    torch.manual_seed(seed)  # re-seeded every epoch: the same shuffle and the same crop per image each epoch
    m.train()
    if bn == "eval":
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d): mod.eval()
    for x, y in torch.utils.data.DataLoader(tr, 32, shuffle=True):
        opt.zero_grad(); nn.functional.cross_entropy(m(x), y).backward(); opt.step()
    m.eval(); c = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(va, 200): c += (m(x).argmax(1) == y).sum().item()
    accs.append(c / len(va)); best = max(best, accs[-1])
print(json.dumps({"seed": seed, "crop": crop, "bn": bn, "freeze": freeze, "size": S, "best": best, "accs": [round(a, 4) for a in accs]}), flush=True)
