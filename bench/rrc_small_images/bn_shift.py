"""What model.train() does to a frozen backbone's BatchNorm running statistics on crop batches vs plain batches:
per BN layer, the running mean after one epoch of train-mode forwards (momentum 0.1, batch 32), compared
with the validation images' own per-channel mean, in units of their std; averaged over channels and layers.
python3 bn_shift.py DATA"""
import sys, copy, torch, torch.nn as nn, torchvision.transforms as T, torchvision.datasets as D
from common import TinyResNet
torch.set_num_threads(1); torch.manual_seed(0)
data = sys.argv[1]
norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
base = TinyResNet(16, 20); base.load_state_dict(torch.load("/tmp/rrc/letters_r18w16.pth"))
va = D.ImageFolder(f"{data}/val", T.Compose([T.ToTensor(), norm]))
def layer_inputs(model, ds):
    stats = {}; hooks = []
    for n, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(lambda m, i, o, n=n: stats.setdefault(n, []).append(i[0].detach())))
    model.eval()
    with torch.no_grad():
        for x, _ in torch.utils.data.DataLoader(ds, 200): model(x)
    for h in hooks: h.remove()
    return {n: (torch.cat(v).mean((0, 2, 3)), torch.cat(v).var((0, 2, 3))) for n, v in stats.items()}
val = layer_inputs(base, va)
def shift(model):
    z = [((m.running_mean - val[n][0]).abs() / val[n][1].sqrt().clamp_min(1e-5)).mean().item()
         for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    return sum(z) / len(z), z[0]
print(f"{data.split('/')[-1]}: pretrained (frozen, rtune's --frozen-bn eval): mean |running mean - val mean| / val std = {shift(base)[0]:.3f} (bn1 {shift(base)[1]:.3f})")
for name, first in (("RandomResizedCrop(32)", T.RandomResizedCrop(32)), ("no crop", T.Resize(32))):
    m = copy.deepcopy(base); m.train()
    tr = D.ImageFolder(f"{data}/train", T.Compose([first, T.RandomHorizontalFlip(), T.ToTensor(), norm]))
    with torch.no_grad():
        for x, _ in torch.utils.data.DataLoader(tr, 32, shuffle=True): m(x)
    s = shift(m)
    print(f"  after one epoch of model.train() forwards, {name:22s}: {s[0]:.3f} (bn1 {s[1]:.3f})")
