"""How far torch.autocast(bfloat16) moves one training step of the tiny ResNet-18/50 fixtures from fp32.

The tiny model (width 8, randomised BatchNorm, batch 4 at 64 px) is ill-conditioned: bf16 rounding
alone moves some of PyTorch's own gradients by more than 100% norm-wise. rtune's bf16 device step is
therefore held to PyTorch's own bf16-vs-fp32 deviation per tensor (tests/cuda/test_cuda_models.cpp),
not to a fixed tolerance. Writes tests/fixtures/tiny_resnet{18,50}_bf16_deviation.json:
{"torch": version, "logits": e, "loss": e, "input_grad": e, "grad": {param: e}, "buffer": {bn stat: e}} with
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


class TinyResNet(R.ResNet):
    """torchvision's ResNet with base width 8 (the fixtures' tiny models)."""

    def __init__(self, block, layers, num_classes):
        torch.nn.Module.__init__(self)
        bn = torch.nn.BatchNorm2d
        self._norm_layer, self.inplanes, self.dilation, self.groups, self.base_width = bn, 8, 1, 1, 64
        self.conv1 = torch.nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = bn(8)
        self.relu = torch.nn.ReLU(inplace=True)
        self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 8, layers[0])
        self.layer2 = self._make_layer(block, 16, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 32, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 64, layers[3], stride=2)
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(64 * block.expansion, num_classes)


MODELS = {  # name: (block, layers, classes, weights, reference)
    "resnet18": (R.BasicBlock, [2, 2, 2, 2], 10, "tiny_resnet18.safetensors", "tiny_resnet18_ref.safetensors"),
    "resnet50": (R.Bottleneck, [3, 4, 6, 3], 7, "tiny_resnet50.pth", "tiny_resnet50_ref.safetensors"),
}


def step(arch, bf16):
    block, layers, classes, weights, reference = MODELS[arch]
    m = TinyResNet(block, layers, classes)
    path = os.path.join(FIX, weights)
    m.load_state_dict(load_file(path) if path.endswith(".safetensors") else torch.load(path, weights_only=True))
    m.train()
    ref = load_file(os.path.join(FIX, reference))
    x = ref["input"].clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = m(x)
    loss = torch.nn.functional.cross_entropy(logits.float(), ref["target"])
    loss.backward()
    return (logits.float().detach(), loss.detach(), x.grad, {n: p.grad for n, p in m.named_parameters()},
            {n: b.clone() for n, b in m.named_buffers() if b.is_floating_point()})


def err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def main():
    for arch in MODELS:
        l32, loss32, gx32, g32, b32 = step(arch, False)
        l16, loss16, gx16, g16, b16 = step(arch, True)
        out = {"torch": torch.__version__, "logits": err(l16, l32), "loss": err(loss16.reshape(1), loss32.reshape(1)),
               "input_grad": err(gx16, gx32), "grad": {n: err(g16[n], g32[n]) for n in g32},
               "buffer": {n: err(b16[n], b32[n]) for n in b32}}
        with open(os.path.join(FIX, f"tiny_{arch}_bf16_deviation.json"), "w") as f:
            json.dump(out, f, indent=1, sort_keys=True)
        print(arch, json.dumps({k: v for k, v in out.items() if k not in ("grad", "buffer")}))


if __name__ == "__main__":
    main()
