"""Reference cases for plugins/misc's padding, Unflatten, dropout and
distance types, and plugins/linear's Bilinear."""
import torch

from reference import Case


def cases(rng, gen):
    out = []
    pads = [("ZeroPad2d", 2, False), ("ConstantPad1d", 1, True), ("ConstantPad2d", 2, True),
            ("ReflectionPad1d", 1, False), ("ReflectionPad2d", 2, False),
            ("ReplicationPad1d", 1, False), ("ReplicationPad2d", 2, False)]
    for typ, dims, value in pads:
        for i in range(3):
            size = [rng.randint(3, 6) for _ in range(dims)]
            lead = [rng.randint(1, 3) for _ in range(rng.randint(1, 2))]
            if i == 0:
                pad = rng.randint(0, 2)
            else:
                pad = [rng.randint(-1 if i == 2 else 0, 2) for _ in range(2 * dims)]
            cfg = {"padding": pad}
            if value:
                cfg["value"] = rng.choice([1, -2.5, 0.0])
            out.append(Case(f"{typ}_{i}", typ, cfg, [torch.randn(*(lead + size), generator=gen)]))
    out.append(Case("ConstantPad1d_1d", "ConstantPad1d", {"padding": 3, "value": 1.0},
                    [torch.randn(3, generator=gen)]))
    out.append(Case("ConstantPad2d_too_long", "ConstantPad2d", {"padding": 3, "value": 1.0},
                    [torch.randn(3, generator=gen)]))
    out.append(Case("ReflectionPad1d_too_wide", "ReflectionPad1d", {"padding": 3},
                    [torch.randn(1, 2, 3, generator=gen)],
                    error="Padding size should be less than the corresponding input dimension, "
                          "but got: padding (3, 3) at dimension 2 of input [1, 2, 3]"))
    out.append(Case("ReflectionPad2d_too_wide", "ReflectionPad2d", {"padding": 3},
                    [torch.randn(1, 2, 3, 5, generator=gen)],
                    error="Padding size should be less than the corresponding input dimension, "
                          "but got: padding (3, 3) at dimension 2 of input [1, 2, 3, 5]"))
    out.append(Case("ReplicationPad1d_1d", "ReplicationPad1d", {"padding": 3},
                    [torch.randn(3, generator=gen)]))
    for i, (dim, sizes, shape) in enumerate([(1, (2, 5), [3, 10]), (-1, (2, -1), [2, 3, 8]),
                                             (0, (3, 1, 2), [6, 2])]):
        out.append(Case(f"Unflatten_{i}", "Unflatten", {"dim": dim, "unflattened_size": sizes},
                        [torch.randn(*shape, generator=gen)]))
    out.append(Case("Unflatten_bad_sizes", "Unflatten", {"dim": 1, "unflattened_size": (2, 5)},
                    [torch.randn(3, 9, generator=gen)]))
    out.append(Case("Unflatten_bad_hole", "Unflatten", {"dim": 1, "unflattened_size": (2, -1)},
                    [torch.randn(3, 9, generator=gen)]))
    out.append(Case("Unflatten_bad_dim", "Unflatten", {"dim": 3, "unflattened_size": (2, -1)},
                    [torch.randn(3, 9, generator=gen)]))
    for typ, shape in [("Dropout1d", [2, 3, 4]), ("Dropout2d", [2, 3, 4, 4]),
                       ("Dropout3d", [1, 2, 3, 2, 2]), ("AlphaDropout", [5]),
                       ("FeatureAlphaDropout", [2, 3, 2])]:
        out.append(Case(f"{typ}_0", typ, {"p": 0.2, "inplace": True},
                        [torch.randn(*shape, generator=gen)]))
        out.append(Case(f"{typ}_1", typ, {}, [torch.randn(*shape, generator=gen)]))
    out.append(Case("Dropout1d_bad_rank", "Dropout1d", {}, [torch.randn(3, 9, 2, 2, generator=gen)]))
    # Distances: broadcast inputs, a dim, norms of several degrees.
    r = lambda *shape: torch.randn(*shape, generator=gen)  # noqa: E731
    out.append(Case("CosineSimilarity_0", "CosineSimilarity", {}, [r(3, 5), r(3, 5)]))
    out.append(Case("CosineSimilarity_1", "CosineSimilarity", {"dim": -1, "eps": 1e-6},
                    [r(2, 1, 4), r(3, 4)]))
    out.append(Case("CosineSimilarity_zero", "CosineSimilarity", {"dim": 0},
                    [torch.zeros(4, 2), r(4, 2)]))
    out.append(Case("CosineSimilarity_bad_broadcast", "CosineSimilarity", {},
                    [r(2, 3), r(2, 4)]))
    for i, cfg in enumerate([{}, {"p": 1.0, "keepdim": True}, {"p": 3.0, "eps": 0.0}]):
        out.append(Case(f"PairwiseDistance_{i}", "PairwiseDistance", cfg,
                        [r(4, 6), r(4, 6) if i != 2 else r(6)]))
    for i, (cfg, lead) in enumerate([({"in1_features": 3, "in2_features": 5,
                                       "out_features": 4}, [6]),
                                      ({"in1_features": 2, "in2_features": 2,
                                        "out_features": 3, "bias": False}, [2, 3])]):
        out.append(Case(f"Bilinear_{i}", "Bilinear", cfg,
                        [r(*lead, cfg["in1_features"]), r(*lead, cfg["in2_features"])]))
    out.append(Case("Bilinear_bad_size", "Bilinear",
                    {"in1_features": 3, "in2_features": 5, "out_features": 4},
                    [r(6, 4), r(6, 5)]))
    return out
