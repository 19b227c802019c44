"""Reference cases for the activations added with the sequence layers."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from reference import Case


def x(gen, rng, lo=1, hi=4):
    shape = [rng.randint(lo, hi) for _ in range(rng.randint(1, 4))]
    return torch.randn(*shape, generator=gen) * 3


def functional(fn):
    class Functional(nn.Module):
        def forward(self, *args):
            return fn(*args)
    return Functional


def cases(rng, gen):
    out = []
    simple = [
        ("LeakyReLU", [{}, {"negative_slope": 0.2, "inplace": True}, {"negative_slope": 2}]),
        ("ELU", [{}, {"alpha": 2, "inplace": True}, {"alpha": 0.5}]),
        ("SELU", [{}, {"inplace": True}]),
        ("CELU", [{}, {"alpha": 0.3}]),
        ("Mish", [{}, {"inplace": True}]),
        ("Softplus", [{}, {"beta": 2.0, "threshold": 10}, {"beta": 0.5, "threshold": 1}]),
        ("Softsign", [{}]),
        ("LogSigmoid", [{}]),
        ("Tanhshrink", [{}]),
        ("Hardshrink", [{}, {"lambd": 1}]),
        ("Softshrink", [{}, {"lambd": 1.5}]),
        ("Threshold", [{"threshold": 0.1, "value": 20}, {"threshold": 1, "value": -2.5, "inplace": True}]),
        ("GLU", [{}, {"dim": 0}]),
        ("LogSoftmax", [{"dim": 1}, {"dim": -1}, {}]),
        ("Softmin", [{"dim": 0}, {}]),
        # Bounds print as given: Hardtanh(min_val=-2, max_val=2) for ints.
        ("Hardtanh", [{}, {"min_val": -2, "max_val": 2}, {"min_val": -0.5, "max_val": 3}]),
        # Eval: the fixed slope (lower + upper) / 2.
        ("RReLU", [{}, {"lower": 0.1, "upper": 0.3, "inplace": True}, {"lower": 0, "upper": 1}]),
    ]
    for typ, cfgs in simple:
        for i, cfg in enumerate(cfgs):
            inp = x(gen, rng)
            if typ == "GLU":
                d = cfg.get("dim", -1)
                shape = list(inp.shape)
                shape[d] *= 2
                inp = torch.randn(*shape, generator=gen)
            if typ in ("LogSoftmax", "Softmin") and "dim" in cfg:
                inp = torch.randn(*([2] * max(inp.dim(), abs(cfg["dim"]) + 1)), generator=gen) * 3
            out.append(Case(f"{typ}_{i}", typ, cfg, [inp]))
    out.append(Case("CELU_zero", "CELU", {"alpha": 0.0}, [torch.randn(3, generator=gen)]))
    out.append(Case("Softmax2d_4d", "Softmax2d", {}, [torch.randn(2, 3, 4, 5, generator=gen)]))
    out.append(Case("Softmax2d_3d", "Softmax2d", {}, [torch.randn(3, 2, 2, generator=gen)]))
    out.append(Case("Softmax2d_2d", "Softmax2d", {}, [torch.randn(3, 4, generator=gen)]))
    out.append(Case("Softshrink_negative", "Softshrink", {"lambd": -1}, [torch.randn(3, generator=gen)]))
    out.append(Case("GLU_odd", "GLU", {}, [torch.randn(2, 3, generator=gen)]))
    out.append(Case("GLU_bad_dim", "GLU", {"dim": 2}, [torch.randn(2, 4, generator=gen)]))
    out.append(Case("LogSoftmax_bad_dim", "LogSoftmax", {"dim": 3}, [torch.randn(2, 3, 4, generator=gen)]))
    for i, (n, shape) in enumerate([(1, [2, 3, 4]), (3, [2, 3, 4]), (4, [1, 4]), (1, [])]):
        out.append(Case(f"PReLU_{i}", "PReLU", {"num_parameters": n, "init": 0.1}, [torch.randn(shape, generator=gen)]))
    out.append(Case("PReLU_bad_channels", "PReLU", {"num_parameters": 3}, [torch.randn(2, 4, generator=gen)]))
    out.append(Case("PReLU_scalar", "PReLU", {"num_parameters": 3}, [torch.randn((), generator=gen)]))
    ops = [("leaky_relu", F.leaky_relu, [0.3]), ("elu", F.elu, [0.7]), ("selu", F.selu, []),
           ("celu", F.celu, [2.0]), ("mish", F.mish, []), ("softplus", F.softplus, [2, 5]),
           ("softsign", F.softsign, []), ("logsigmoid", F.logsigmoid, []),
           ("tanhshrink", F.tanhshrink, []), ("hardshrink", F.hardshrink, [0.7]),
           ("softshrink", F.softshrink, [0.2]), ("threshold", F.threshold, [0.5, -1.0]),
           ("glu", F.glu, [0])]
    for name, fn, extra in ops:
        inp = torch.randn(4, 3, generator=gen) * 3
        out.append(Case(f"{name}_fn", name, {}, [inp] + extra, cls=functional(fn), op=True))
    out.append(Case("prelu_fn", "prelu", {}, [torch.randn(2, 3, 2, generator=gen),
                                               torch.randn(3, generator=gen)],
                    cls=functional(F.prelu), op=True))
    return out
