"""Reference cases for plugins/attention: MultiheadAttention and the
Transformer composites, built by nnkit from descriptor nodes."""
import torch
import torch.nn as nn

from reference import Case


def randn(gen, *shape):
    return torch.randn(*shape, generator=gen)


def padding_mask(gen, rng, n, s, left_aligned=True, all_padded=False):
    m = torch.zeros(n, s, dtype=torch.bool)
    for b in range(n):
        keep = rng.randint(1, s - 1 if all_padded and s > 1 else s)
        if left_aligned:
            m[b, keep:] = True
        else:
            m[b, rng.randrange(s)] = True
            m[b, 0] = False
    return m


def cases(rng, gen):
    out = []
    for i in range(8):
        h = rng.choice([1, 2, 3])
        e = h * rng.randint(1, 3)
        kdim = vdim = None
        if i in (2, 6):
            kdim, vdim = rng.randint(1, 4), rng.randint(1, 4)
        cfg = {"embed_dim": e, "num_heads": h, "bias": i != 3, "add_bias_kv": i in (4, 6),
               "add_zero_attn": i in (5, 6), "kdim": kdim, "vdim": vdim,
               "batch_first": i in (1, 7), "dropout": 0.1 if i == 0 else 0.0}
        l, s, n = rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 3)
        unbatched = i == 7
        def seq(length, feat):
            if unbatched:
                return randn(gen, length, feat)
            return randn(gen, n, length, feat) if cfg["batch_first"] else randn(gen, length, n, feat)
        q, k, v = seq(l, e), seq(s, kdim or e), seq(s, vdim or e)
        kwargs = {}
        if i in (1, 5, 6):
            kwargs["key_padding_mask"] = padding_mask(gen, rng, n, s)
        if i == 2:
            kwargs["attn_mask"] = randn(gen, l, s)
        if i == 4:
            kwargs["attn_mask"] = torch.rand(l, s, generator=gen) > 0.7
            kwargs["attn_mask"][:, 0] = False
        if i == 5:
            kwargs["attn_mask"] = randn(gen, n * h, l, s)
        if i == 3:
            kwargs["average_attn_weights"] = False
        if i == 6:
            kwargs["need_weights"] = False
        if unbatched:
            kwargs["key_padding_mask"] = torch.tensor([False] * (s - 1) + [s > 1])
        out.append(Case(f"MultiheadAttention_{i}", "MultiheadAttention", cfg, [q, k, v],
                        kwargs=kwargs, tree=True))
    mha = {"embed_dim": 4, "num_heads": 2}
    out.append(Case("MultiheadAttention_indivisible", "MultiheadAttention",
                    {"embed_dim": 5, "num_heads": 2}, [], error="embed_dim must be divisible by num_heads"))
    out.append(Case("MultiheadAttention_bad_embed", "MultiheadAttention", mha,
                    [randn(gen, 3, 2, 5), randn(gen, 3, 2, 5), randn(gen, 3, 2, 5)], tree=True))
    out.append(Case("MultiheadAttention_kv_mismatch", "MultiheadAttention", mha,
                    [randn(gen, 3, 2, 4), randn(gen, 5, 2, 4), randn(gen, 6, 2, 4)], tree=True,
                    error="key shape [5, 2, 4] does not match value shape [6, 2, 4]"))
    out.append(Case("MultiheadAttention_4d", "MultiheadAttention", mha,
                    [randn(gen, 1, 3, 2, 4), randn(gen, 3, 2, 4), randn(gen, 3, 2, 4)], tree=True))
    out.append(Case("MultiheadAttention_bad_mask", "MultiheadAttention", mha,
                    [randn(gen, 3, 2, 4), randn(gen, 5, 2, 4), randn(gen, 5, 2, 4)],
                    kwargs={"attn_mask": randn(gen, 3, 4)}, tree=True,
                    error="The shape of the 2D attn_mask is [3, 4], but should be (3, 5)."))
    for i in range(5):
        h = rng.choice([1, 2])
        d = h * rng.randint(1, 3)
        cfg = {"d_model": d, "nhead": h, "dim_feedforward": rng.randint(1, 6), "dropout": 0.1,
               "activation": ["relu", "gelu"][i % 2], "layer_norm_eps": rng.choice([1e-5, 1e-3]),
               "batch_first": i in (1, 3), "norm_first": i in (2, 3)}
        l, n = rng.randint(1, 4), rng.randint(1, 3)
        src = randn(gen, n, l, d) if cfg["batch_first"] else randn(gen, l, n, d)
        kwargs = {}
        if i in (1, 4):
            kwargs["src_key_padding_mask"] = padding_mask(gen, rng, n, l)
        if i in (2, 4):
            kwargs["src_mask"] = nn.Transformer.generate_square_subsequent_mask(l)
        out.append(Case(f"TransformerEncoderLayer_{i}", "TransformerEncoderLayer", cfg, [src],
                        kwargs=kwargs, tree=True))
        t, s = rng.randint(1, 4), rng.randint(1, 4)
        tgt = randn(gen, n, t, d) if cfg["batch_first"] else randn(gen, t, n, d)
        mem = randn(gen, n, s, d) if cfg["batch_first"] else randn(gen, s, n, d)
        kwargs = {}
        if i in (1, 4):
            kwargs["tgt_mask"] = nn.Transformer.generate_square_subsequent_mask(t)
            kwargs["memory_key_padding_mask"] = padding_mask(gen, rng, n, s)
        if i == 3:
            kwargs["memory_mask"] = torch.rand(t, s, generator=gen) > 0.8
            kwargs["memory_mask"][:, 0] = False
            kwargs["tgt_key_padding_mask"] = padding_mask(gen, rng, n, t)
        out.append(Case(f"TransformerDecoderLayer_{i}", "TransformerDecoderLayer", cfg, [tgt, mem],
                        kwargs=kwargs, tree=True))
    # TransformerEncoder: with and without PyTorch's nested-tensor path.
    for i, (bf, nf, heads, left, use_norm) in enumerate([
            (True, False, 2, True, True), (True, False, 2, False, False),
            (False, False, 2, True, True), (True, True, 2, True, False),
            (True, False, 1, True, True), (True, False, 2, True, False)]):
        d = 4
        layer = nn.TransformerEncoderLayer(d, heads, 6, batch_first=bf, norm_first=nf)
        norm = nn.LayerNorm(d) if use_norm else None
        n, l = 3, 5
        src = randn(gen, n, l, d) if bf else randn(gen, l, n, d)
        # Every row padded, so the nested path's result is shorter.
        kpm = padding_mask(gen, rng, n, l, left_aligned=left, all_padded=True)
        if i == 5:
            kpm = None
        nested = bf and not nf and heads % 2 == 0 and left and kpm is not None
        out.append(Case(f"TransformerEncoder_{i}", "TransformerEncoder", {}, [src],
                        kwargs={"src_key_padding_mask": kpm} if kpm is not None else {},
                        cls=lambda layer=layer, norm=norm: nn.TransformerEncoder(layer, 2, norm),
                        tree=True, shape_from_data=nested))
    # The nested path with self_attn's kdim/vdim written as numbers equal to
    # embed_dim (as torch2nn writes them), not None.
    layer = nn.TransformerEncoderLayer(4, 2, 6, batch_first=True)

    def explicit_dims(enc):
        for lay in enc.layers:
            lay.self_attn.nnkit_explicit_dims = True

    out.append(Case("TransformerEncoder_explicit_kdim", "TransformerEncoder", {},
                    [randn(gen, 3, 5, 4)],
                    kwargs={"src_key_padding_mask": padding_mask(gen, rng, 3, 5,
                                                                 all_padded=True)},
                    cls=lambda layer=layer: nn.TransformerEncoder(layer, 2),
                    init=explicit_dims, tree=True, shape_from_data=True))
    for i in range(2):
        d = 4
        layer = nn.TransformerDecoderLayer(d, 2, 5, batch_first=i == 1, norm_first=i == 1)
        norm = nn.LayerNorm(d) if i == 0 else None
        t, s, n = 3, 4, 2
        tgt = randn(gen, n, t, d) if i else randn(gen, t, n, d)
        mem = randn(gen, n, s, d) if i else randn(gen, s, n, d)
        out.append(Case(f"TransformerDecoder_{i}", "TransformerDecoder", {}, [tgt, mem],
                        kwargs={"tgt_mask": nn.Transformer.generate_square_subsequent_mask(t)},
                        cls=lambda layer=layer, norm=norm: nn.TransformerDecoder(layer, 2, norm),
                        tree=True))
    for i in range(2):
        cfg = {"d_model": 4, "nhead": 2, "num_encoder_layers": 2, "num_decoder_layers": 1,
               "dim_feedforward": 6, "batch_first": i == 1, "norm_first": i == 1,
               "activation": ["relu", "gelu"][i]}
        s, t, n = 4, 3, 2
        src = randn(gen, n, s, 4) if i else randn(gen, s, n, 4)
        tgt = randn(gen, n, t, 4) if i else randn(gen, t, n, 4)
        out.append(Case(f"Transformer_{i}", "Transformer", cfg, [src, tgt],
                        kwargs={"tgt_mask": nn.Transformer.generate_square_subsequent_mask(t)},
                        tree=True))
    out.append(Case("Transformer_bad_batch", "Transformer",
                    {"d_model": 4, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                     "dim_feedforward": 6}, [randn(gen, 4, 2, 4), randn(gen, 3, 3, 4)], tree=True))
    out.append(Case("Transformer_bad_features", "Transformer",
                    {"d_model": 4, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                     "dim_feedforward": 6}, [randn(gen, 4, 2, 4), randn(gen, 3, 2, 5)], tree=True))
    # Long sequences: 1 MiB of scores per (batch, head), so the oneDNN
    # provider runs Q K^T, the masks, softmax and P V in several chunks of
    # slabs that fit L2, the last one shorter (9 slabs; any L2 below 9 MiB).
    n, h, l = 3, 3, 512
    cfg = {"embed_dim": 12, "num_heads": h, "batch_first": True}
    x = randn(gen, n, l, 12)
    out.append(Case("MultiheadAttention_chunked_self", "MultiheadAttention", cfg, [x, x, x],
                    kwargs={"need_weights": False}, tree=True))
    am = torch.rand(n * h, l, l, generator=gen) > 0.9
    am[:, :, 0] = False
    out.append(Case("MultiheadAttention_chunked_masks", "MultiheadAttention", cfg,
                    [randn(gen, n, l, 12), x, x],
                    kwargs={"need_weights": False, "attn_mask": am,
                            "key_padding_mask": padding_mask(gen, rng, n, l)}, tree=True))
    out.append(Case("MultiheadAttention_chunked_float_mask", "MultiheadAttention",
                    dict(cfg, batch_first=False), [randn(gen, l, n, 12), x.transpose(0, 1),
                                                   x.transpose(0, 1)],
                    kwargs={"need_weights": False, "attn_mask": randn(gen, l, l)}, tree=True))
    return out
