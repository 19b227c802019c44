"""Reference cases for plugins/embedding."""
import torch
import torch.nn.functional as F

from reference import Case


def idx(gen, rows, *shape, dtype=torch.int64):
    return torch.randint(0, rows, shape, generator=gen).to(dtype)


class Functional(torch.nn.Module):
    """F.embedding as a module, so the case machinery can call it."""

    def forward(self, *args):
        return F.embedding(*args)


def cases(rng, gen):
    out = []
    for i in range(5):
        rows, dim = rng.randint(2, 12), rng.randint(1, 6)
        cfg = {"num_embeddings": rows, "embedding_dim": dim}
        if i in (1, 3):
            cfg["padding_idx"] = rng.choice([0, -1, rows - 1])
        if i == 2:
            cfg.update(max_norm=1.0, norm_type=rng.choice([1.0, 2.0, 3.0]))
        if i == 4:
            cfg.update(scale_grad_by_freq=True, sparse=True)
        shape = [rng.randint(1, 4) for _ in range(rng.randint(1, 3))]
        dtype = torch.int32 if i == 3 else torch.int64
        out.append(Case(f"Embedding_{i}", "Embedding", cfg, [idx(gen, rows, *shape, dtype=dtype)]))
    out.append(Case("Embedding_bad_padding", "Embedding",
                    {"num_embeddings": 10, "embedding_dim": 3, "padding_idx": 10}, []))
    out.append(Case("Embedding_bad_index", "Embedding",
                    {"num_embeddings": 10, "embedding_dim": 3}, [torch.tensor([[1, 10]])]))
    out.append(Case("Embedding_negative_index", "Embedding",
                    {"num_embeddings": 10, "embedding_dim": 3}, [torch.tensor([-1])]))
    # nnkit checks dtypes when binding arguments, in its own words.
    out.append(Case("Embedding_float_index", "Embedding",
                    {"num_embeddings": 10, "embedding_dim": 3}, [torch.tensor([1.0])],
                    error="I64"))
    for i in range(6):
        rows, dim = rng.randint(2, 10), rng.randint(1, 5)
        mode = ["sum", "mean", "max"][i % 3]
        cfg = {"num_embeddings": rows, "embedding_dim": dim, "mode": mode}
        if i >= 3:
            cfg["padding_idx"] = rng.randint(0, rows - 1)
        if i == 4:
            cfg["max_norm"] = 1.5
        if i % 2:
            n = rng.randint(3, 8)
            cuts = sorted(rng.sample(range(1, n), 2))
            offsets = [0] + cuts
            last = i == 5
            if last:
                cfg["include_last_offset"] = True
                offsets.append(n)
            args = [idx(gen, rows, n), torch.tensor(offsets)]
            if mode == "sum":
                args.append(torch.randn(n, generator=gen))
        else:
            args = [idx(gen, rows, rng.randint(1, 3), rng.randint(1, 4))]
            if mode == "sum":
                args += [None, torch.randn(*args[0].shape, generator=gen)]
        out.append(Case(f"EmbeddingBag_{i}", "EmbeddingBag", cfg, args))
    out.append(Case("EmbeddingBag_empty_bag", "EmbeddingBag",
                    {"num_embeddings": 5, "embedding_dim": 2, "mode": "max"},
                    [torch.tensor([1, 2]), torch.tensor([0, 2, 2])]))
    bag = {"num_embeddings": 10, "embedding_dim": 3}
    out.append(Case("EmbeddingBag_no_offsets", "EmbeddingBag", bag, [torch.tensor([1, 2])]))
    out.append(Case("EmbeddingBag_2d_offsets", "EmbeddingBag", bag,
                    [torch.tensor([[1, 2]]), torch.tensor([0])],
                    error="if input is 2D, then offsets has to be None"))
    out.append(Case("EmbeddingBag_3d", "EmbeddingBag", bag, [torch.tensor([[[1, 2]]])]))
    out.append(Case("EmbeddingBag_first_offset", "EmbeddingBag", bag,
                    [torch.tensor([1, 2]), torch.tensor([1])],
                    error="offsets[0] has to be 0, i.e., the first sequence in the mini-batch "
                          "has to start from position 0. However, got 1"))
    out.append(Case("EmbeddingBag_weights_mean", "EmbeddingBag", bag,
                    [torch.tensor([1, 2]), torch.tensor([0]), torch.tensor([1., 2.])],
                    error="per_sample_weights is only supported for mode='sum' (got mode='mean')"))
    out.append(Case("EmbeddingBag_weights_shape", "EmbeddingBag", dict(bag, mode="sum"),
                    [torch.tensor([1, 2]), torch.tensor([0]), torch.tensor([1., 2., 3.])]))
    out.append(Case("EmbeddingBag_offset_past_end", "EmbeddingBag", bag,
                    [torch.tensor([1, 2]), torch.tensor([0, 3])],
                    error="offsets[-1] can not be greater than input's length 2"))
    out.append(Case("EmbeddingBag_bad_index", "EmbeddingBag", bag,
                    [torch.tensor([1, 12]), torch.tensor([0])],
                    error="index out of range in self"))
    for i in range(2):
        rows, dim = rng.randint(2, 8), rng.randint(1, 4)
        args = [idx(gen, rows, rng.randint(1, 4), 2), torch.randn(rows, dim, generator=gen)]
        if i:
            args += [None, 0.8]
        out.append(Case(f"embedding_{i}", "embedding", {}, args, cls=Functional, op=True))
    return out
