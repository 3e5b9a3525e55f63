"""Extra optimizer / clipping / scheduler references for tests/optim (beyond the shared
training_reference.json): the option combinations rtune supports that the shared fixture leaves out.

Run: python3 tests/gen/make_optim_reference.py tests/fixtures/optim_extra_reference.json
Needs torch (CPU is enough). Everything is seeded; the torch version is recorded in the output.
"""
import json, sys
import torch, torch.nn as nn

S = torch.optim.lr_scheduler
OPTS = {
    "sgd_nesterov_wd_lr0.05": (torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    "sgd_momentum_damp_wd_max": (torch.optim.SGD, dict(lr=0.1, momentum=0.8, dampening=0.3, weight_decay=1e-3, maximize=True)),
    "adam_betas_eps": (torch.optim.Adam, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    "adamw_amsgrad": (torch.optim.AdamW, dict(lr=2e-3, weight_decay=1e-2, amsgrad=True)),
    "adamw_default_wd": (torch.optim.AdamW, dict(lr=1e-3)),
    "adam_maximize": (torch.optim.Adam, dict(lr=1e-2, maximize=True)),
    "rmsprop_centered": (torch.optim.RMSprop, dict(lr=1e-2, centered=True)),
    "rmsprop_momentum_wd": (torch.optim.RMSprop, dict(lr=1e-2, alpha=0.9, eps=1e-6, momentum=0.9, weight_decay=1e-3)),
    "rmsprop_centered_momentum_wd": (torch.optim.RMSprop, dict(lr=5e-3, momentum=0.5, centered=True, weight_decay=1e-2)),
}


def trajectories(dtype, p0, grads):
    out = {}
    for name, (cls, kw) in OPTS.items():
        p = p0.to(dtype).clone().requires_grad_(True)
        opt = cls([p], foreach=False, **kw)
        traj = []
        for g in grads:
            p.grad = g.to(dtype).clone()
            opt.step()
            traj.append(p.detach().double().tolist())
        kwj = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}
        out[name] = {"class": cls.__name__, "kwargs": kwj, "params_after_each_step": traj}
    return out


def lrs(make_sched, steps, lr=0.1, metrics=None, groups=1, opt_cls=torch.optim.SGD, opt_kw=None):
    ps = [torch.zeros(1, requires_grad=True) for _ in range(groups)]
    opt = opt_cls([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(ps)], **(dict(momentum=0.9) if opt_kw is None else opt_kw))
    s = make_sched(opt)
    seq, mom = [], []
    for i in range(steps):
        seq.append([g["lr"] for g in opt.param_groups])
        g0 = opt.param_groups[0]
        mom.append(g0["betas"][0] if "betas" in g0 else g0.get("momentum"))
        if i + 1 == steps:
            break  # the last value is recorded without stepping past it
        opt.step()
        s.step(metrics[i]) if metrics is not None else s.step()
    return {"lrs": seq, "momentum": mom}


def main(path):
    g = torch.Generator().manual_seed(11)
    p0 = torch.randn(12, generator=g, dtype=torch.float64)
    grads = [torch.randn(12, generator=g, dtype=torch.float64) * (i + 1) for i in range(6)]
    out = {"torch_version": torch.__version__,
           "p0": p0.tolist(), "grads": [x.tolist() for x in grads],
           "optimizers": trajectories(torch.float64, p0, grads)}
    p0f, gf = p0.float(), [x.float() for x in grads]
    out["float32"] = {"p0": p0f.double().tolist(), "grads": [x.double().tolist() for x in gf],
                      "optimizers": trajectories(torch.float32, p0f, gf)}

    # Clipping: several tensors, norm types 2, 1, inf, 3; a no-op clip (coef clamped to 1); float32.
    ts = [torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64),
          torch.randn(2, generator=g, dtype=torch.float64) * 5]
    clip = {"grads": [t.flatten().tolist() for t in ts], "norm": []}
    for dtype in (torch.float64, torch.float32):
        for max_norm, nt in [(1.0, 2.0), (0.5, 1.0), (2.0, float("inf")), (1.5, 3.0), (100.0, 2.0)]:
            ps = [t.to(dtype).clone().requires_grad_(True) for t in ts]
            for p in ps:
                p.grad = p.detach().clone()
            total = nn.utils.clip_grad_norm_(ps, max_norm=max_norm, norm_type=nt, foreach=False)
            clip["norm"].append({"dtype": str(dtype).replace("torch.", ""), "max_norm": max_norm,
                                 "norm_type": "inf" if nt == float("inf") else nt, "total_norm": total.item(),
                                 "clipped": [p.grad.flatten().double().tolist() for p in ps]})
    out["clip"] = clip

    sch = {}
    sch["cosine_T4_eta0.01_30"] = lrs(lambda o: S.CosineAnnealingLR(o, T_max=4, eta_min=0.01), 30, groups=2)
    sch["multistep_dup_2_2_5"] = lrs(lambda o: S.MultiStepLR(o, milestones=[5, 2, 2], gamma=0.5), 8, groups=2)
    sch["step_3_0.7"] = lrs(lambda o: S.StepLR(o, step_size=3, gamma=0.7), 12, groups=2)
    sch["linear_0.25_to_0.5_4"] = lrs(lambda o: S.LinearLR(o, start_factor=0.25, end_factor=0.5, total_iters=4), 7)
    sch["exponential_0.5_2groups"] = lrs(lambda o: S.ExponentialLR(o, gamma=0.5), 5, groups=2)
    sch["onecycle_three_phase_cos_40"] = lrs(
        lambda o: S.OneCycleLR(o, max_lr=[0.1, 0.05], total_steps=40, three_phase=True, div_factor=10.0,
                               final_div_factor=100.0, pct_start=0.25), 40, groups=2)
    sch["onecycle_adam_beta1_linear_30"] = lrs(
        lambda o: S.OneCycleLR(o, max_lr=0.02, total_steps=30, anneal_strategy="linear", base_momentum=0.8,
                               max_momentum=0.9), 31, opt_cls=torch.optim.Adam, opt_kw={})
    sch["onecycle_no_momentum_20"] = lrs(
        lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=20, cycle_momentum=False), 20)
    m1 = [1.0, 0.9, 0.95, 0.96, 0.97, 0.85, 0.86, 0.87, 0.88, 0.80, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86, 0.87]
    sch["plateau_min_abs_cooldown"] = dict(metrics=m1, **lrs(
        lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=1, threshold=0.05,
                                      threshold_mode="abs", cooldown=2, min_lr=[0.02, 0.0]), len(m1), metrics=m1, groups=2))
    m2 = [0.1, 0.2, 0.2, 0.19, 0.3, 0.3, 0.3, 0.3, 0.3, 0.31, 0.29, 0.28, 0.27, 0.26]
    sch["plateau_max_rel_eps"] = dict(metrics=m2, **lrs(
        lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.1, patience=0, threshold=0.1, min_lr=1e-4,
                                      eps=1e-3), len(m2), metrics=m2, lr=0.05))
    out["schedulers"] = sch
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
