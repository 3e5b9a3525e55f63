"""How far torch.autocast(bfloat16) moves one training step of the tiny ResNet-18 fixture from fp32.

The tiny model (width 8, randomised BatchNorm, batch 4 at 64 px) is ill-conditioned: bf16 rounding
alone moves some of PyTorch's own gradients by more than 100% norm-wise. rtune's bf16 device step is
therefore held to PyTorch's own bf16-vs-fp32 deviation per tensor (tests/cuda/test_cuda_models.cpp),
not to a fixed tolerance. Writes tests/fixtures/tiny_resnet18_bf16_deviation.json:
{"torch": version, "logits": e, "loss": e, "input_grad": e, "grad": {param: e}} with
e = ||bf16 - fp32|| / ||fp32|| (autocast on the CPU: bf16 convolutions and linear with fp32
accumulation, fp32 batch norm, the loss in fp32).
"""
import json
import os

import torch
import torchvision.models.resnet as R
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")


class TinyResNet18(R.ResNet):
    """torchvision's ResNet with base width 8 (the fixtures' tiny models)."""

    def __init__(self):
        torch.nn.Module.__init__(self)
        bn = torch.nn.BatchNorm2d
        self._norm_layer, self.inplanes, self.dilation, self.groups, self.base_width = bn, 8, 1, 1, 64
        self.conv1 = torch.nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = bn(8)
        self.relu = torch.nn.ReLU(inplace=True)
        self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(R.BasicBlock, 8, 2)
        self.layer2 = self._make_layer(R.BasicBlock, 16, 2, stride=2)
        self.layer3 = self._make_layer(R.BasicBlock, 32, 2, stride=2)
        self.layer4 = self._make_layer(R.BasicBlock, 64, 2, stride=2)
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(64, 10)


def step(bf16):
    m = TinyResNet18()
    m.load_state_dict(load_file(os.path.join(FIX, "tiny_resnet18.safetensors")))
    m.train()
    ref = load_file(os.path.join(FIX, "tiny_resnet18_ref.safetensors"))
    x = ref["input"].clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = m(x)
    loss = torch.nn.functional.cross_entropy(logits.float(), ref["target"])
    loss.backward()
    return logits.float().detach(), loss.detach(), x.grad, {n: p.grad for n, p in m.named_parameters()}


def main():
    l32, loss32, gx32, g32 = step(False)
    l16, loss16, gx16, g16 = step(True)

    def err(a, b):
        return ((a.double() - b.double()).norm() / b.double().norm()).item()

    out = {"torch": torch.__version__, "logits": err(l16, l32), "loss": err(loss16.reshape(1), loss32.reshape(1)),
           "input_grad": err(gx16, gx32), "grad": {n: err(g16[n], g32[n]) for n in g32}}
    with open(os.path.join(FIX, "tiny_resnet18_bf16_deviation.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    print(json.dumps({k: v for k, v in out.items() if k != "grad"}))


if __name__ == "__main__":
    main()
