import torch, torch.nn as nn, torchvision.transforms as T, torchvision.datasets as D, time
from common import TinyResNet
torch.set_num_threads(1); torch.manual_seed(0)
norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
tr = D.ImageFolder("/tmp/rrc/letters/train", T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.ToTensor(), norm]))
va = D.ImageFolder("/tmp/rrc/letters/val", T.Compose([T.ToTensor(), norm]))
m = TinyResNet(16, 20); opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
E = 12; sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=E * ((len(tr) + 63) // 64))
for e in range(E):
    m.train(); t = time.time()
    for x, y in torch.utils.data.DataLoader(tr, 64, shuffle=True):
        opt.zero_grad(); nn.functional.cross_entropy(m(x), y).backward(); opt.step(); sched.step()
    m.eval(); c = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(va, 200): c += (m(x).argmax(1) == y).sum().item()
    print(e, f"{c/len(va):.3f}", f"{time.time()-t:.0f}s", flush=True)
torch.save(m.state_dict(), "/tmp/rrc/letters_r18w16.pth")
