"""Reference cases for plugins/norm: random configurations and shapes."""
import torch

from reference import Case


def randn(gen, *shape):
    return torch.randn(*shape, generator=gen) * 2 + 0.5


def cases(rng, gen):
    out = []
    for i in range(4):
        shape = [rng.randint(1, 3)] + [rng.randint(2, 5) for _ in range(rng.randint(1, 3))]
        k = rng.randint(1, len(shape) - 1)
        norm = shape[-k:]
        cfg = {"normalized_shape": norm if k > 1 or i % 2 else norm[0],
               "eps": rng.choice([1e-5, 1e-3, 0.1]),
               "elementwise_affine": i != 2}
        out.append(Case(f"LayerNorm_{i}", "LayerNorm", cfg, [randn(gen, *shape)]))
    out.append(Case("LayerNorm_bad_shape", "LayerNorm", {"normalized_shape": 10},
                    [randn(gen, 2, 5)]))
    out.append(Case("LayerNorm_bad_shape2", "LayerNorm", {"normalized_shape": [4, 5]},
                    [randn(gen, 2, 5, 4)]))
    for i in range(4):
        g = rng.choice([1, 2, 3])
        c = g * rng.randint(1, 3)
        shape = [rng.randint(1, 3), c] + [rng.randint(1, 4) for _ in range(i % 3)]
        if len(shape) == 2 and g == c:
            shape.append(3)   # a group of one value normalises to 0 / sqrt(eps)
        cfg = {"num_groups": g, "num_channels": c, "eps": rng.choice([1e-5, 0.01]),
               "affine": i != 1}
        out.append(Case(f"GroupNorm_{i}", "GroupNorm", cfg, [randn(gen, *shape)]))
    out.append(Case("GroupNorm_indivisible", "GroupNorm",
                    {"num_groups": 2, "num_channels": 5}, []))
    out.append(Case("GroupNorm_bad_channels", "GroupNorm",
                    {"num_groups": 2, "num_channels": 4}, [randn(gen, 2, 6, 3)]))
    for d, typ in ((1, "InstanceNorm1d"), (2, "InstanceNorm2d")):
        for i in range(4):
            c = rng.randint(1, 4)
            spatial = [rng.randint(2, 5) for _ in range(d)]
            batched = i != 1
            shape = ([rng.randint(1, 3)] if batched else []) + [c] + spatial
            cfg = {"num_features": c, "eps": rng.choice([1e-5, 1e-3]),
                   "momentum": rng.choice([0.1, 0.5]),
                   "affine": i in (0, 2), "track_running_stats": i in (2, 3)}
            out.append(Case(f"{typ}_{i}", typ, cfg, [randn(gen, *shape)]))
        out.append(Case(f"{typ}_bad_rank", typ, {"num_features": 4},
                        [randn(gen, *([2, 4] + [3] * (d + 1)))]))
        # 1.13 fails inside F.instance_norm; nnkit says what newer PyTorch says.
        out.append(Case(f"{typ}_bad_channels", typ, {"num_features": 4, "affine": True},
                        [randn(gen, *([2, 5] + [3] * d))],
                        error="expected input's size at dim=1 to match num_features (4), but got: 5."))
    out.append(Case("InstanceNorm1d_one_element", "InstanceNorm1d", {"num_features": 4},
                    [randn(gen, 2, 4, 1)]))
    for i in range(4):
        c = rng.randint(1, 5)
        shape = [rng.randint(2, 4), c] + ([rng.randint(1, 5)] if i % 2 else [])
        cfg = {"num_features": c, "eps": rng.choice([1e-5, 0.01]),
               "momentum": rng.choice([0.1, None]), "affine": i != 2,
               "track_running_stats": i != 3}
        out.append(Case(f"BatchNorm1d_{i}", "BatchNorm1d", cfg, [randn(gen, *shape)]))
    for i in range(3):
        c = rng.randint(1, 4)
        cfg = {"num_features": c, "affine": i != 1, "track_running_stats": i != 2}
        out.append(Case(f"BatchNorm3d_{i}", "BatchNorm3d", cfg,
                        [randn(gen, rng.randint(1, 2), c, 2, 3, rng.randint(2, 4))]))
    out.append(Case("BatchNorm3d_bad_rank", "BatchNorm3d", {"num_features": 4},
                    [randn(gen, 2, 4, 3, 3)]))
    out.append(Case("BatchNorm1d_bad_rank", "BatchNorm1d", {"num_features": 4},
                    [randn(gen, 2, 4, 3, 3)]))
    out.append(Case("BatchNorm1d_bad_channels", "BatchNorm1d", {"num_features": 4},
                    [randn(gen, 2, 5, 3)]))
    out.append(Case("BatchNorm1d_one_value", "BatchNorm1d",
                    {"num_features": 4, "track_running_stats": False}, [randn(gen, 1, 4)]))
    for i in range(3):
        size = rng.randint(1, 5)
        shape = [rng.randint(1, 3), rng.randint(1, 6)] + [rng.randint(1, 4) for _ in range(i + 1)]
        cfg = {"size": size, "alpha": rng.choice([1e-4, 0.5]),
               "beta": rng.choice([0.75, 1.5]), "k": rng.choice([1.0, 2.0])}
        out.append(Case(f"LocalResponseNorm_{i}", "LocalResponseNorm", cfg,
                        [randn(gen, *shape)]))
    out.append(Case("LocalResponseNorm_bad_rank", "LocalResponseNorm", {"size": 2},
                    [randn(gen, 4, 3)]))
    return out + functional_cases(rng, gen)


class GroupNormFunctional(torch.nn.Module):
    """F.group_norm as a module, so the case machinery can call it."""

    def forward(self, *args):
        return torch.nn.functional.group_norm(*args)


def functional_cases(rng, gen):
    out = []
    for i in range(3):
        g = rng.choice([1, 2])
        c = g * rng.randint(1, 3)
        x = randn(gen, 2, c, 3)
        args = [x, g] + ([randn(gen, c), randn(gen, c), 0.01] if i else [])
        out.append(Case(f"group_norm_{i}", "group_norm", {}, args, cls=GroupNormFunctional, op=True))
    out.append(Case("group_norm_indivisible", "group_norm", {}, [randn(gen, 2, 5, 3), 2],
                    cls=GroupNormFunctional, op=True))
    return out
