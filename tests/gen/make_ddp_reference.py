"""PyTorch DDP (gloo, 2 CPU processes) on the tiny ResNet-18: the reference for rtune's MPI ranks.

Each of 2 ranks takes half of every batch of tiny_resnet18_steps_inputs.safetensors (rank r: rows
[2r, 2r+2) of step{0,1,2}.input), the model wrapped in DistributedDataParallel with its defaults (per-rank
BatchNorm statistics, broadcast_buffers=True), float64, train mode, all layers trainable,
SGD(lr=0.05, momentum=0.9, nesterov, weight_decay=5e-4) + clip_grad_norm_(1.0): the
sgd_nesterov_clipnorm recipe of tests/train/three_step_recipes.h, split over two ranks.
Writes tests/fixtures/tiny_resnet18_ddp2_3steps.safetensors: `losses.rank{0,1}` (3 each, the rank's own
loss), `param.<name>` after the 3 steps (every rank holds the same), `buffer.<name>` rank 0's buffers,
and metadata {"torch": version}.
"""
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bf16_reference import FIX, MODELS, TinyResNet  # noqa: E402

RANKS, STEPS, PER_RANK = 2, 3, 2


def rank_main(rank, init_file, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=RANKS)
    torch.manual_seed(0)
    block, layers, classes, weights, _ = MODELS["resnet18"]
    m = TinyResNet(block, layers, classes)
    m.load_state_dict(load_file(os.path.join(FIX, weights)))
    m = m.double().train()
    ddp = torch.nn.parallel.DistributedDataParallel(m)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    inputs = load_file(os.path.join(FIX, "tiny_resnet18_steps_inputs.safetensors"))
    losses = []
    for s in range(STEPS):
        rows = slice(PER_RANK * rank, PER_RANK * (rank + 1))
        x = inputs[f"step{s}.input"][rows].double()
        y = inputs[f"step{s}.target"][rows]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(ddp(x), y)
        loss.backward()  # DDP averages the gradients over the ranks here
        torch.nn.utils.clip_grad_norm_(ddp.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    all_losses = [None] * RANKS
    dist.all_gather_object(all_losses, losses)
    if rank == 0:
        out = {f"losses.rank{r}": torch.tensor(all_losses[r], dtype=torch.float64) for r in range(RANKS)}
        out.update({f"param.{n}": p.detach().clone().contiguous() for n, p in m.named_parameters()})
        out.update({f"buffer.{n}": b.clone().contiguous() for n, b in m.named_buffers()})
        save_file(out, out_file, metadata={"torch": torch.__version__, "generator": "tests/gen/make_ddp_reference.py"})
    dist.destroy_process_group()


def main():
    out_file = os.path.join(FIX, "tiny_resnet18_ddp2_3steps.safetensors")
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(rank_main, args=(os.path.join(d, "init"), out_file), nprocs=RANKS, join=True)
    ref = load_file(out_file)
    print("torch", torch.__version__, {k: v.tolist() for k, v in ref.items() if k.startswith("losses")})


if __name__ == "__main__":
    main()
