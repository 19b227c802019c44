"""Reference cases for the 1-d and 3-d convolutions and pools, the
transposed convolutions and plugins/upsample."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from reference import Case


def randn(gen, *shape):
    return torch.randn(*shape, generator=gen)


def functional(fn):
    class Functional(nn.Module):
        def forward(self, *args, **kwargs):
            return fn(*args, **kwargs)
    return Functional


def cases(rng, gen):
    out = []
    for i in range(6):
        g = rng.choice([1, 1, 2])
        cin, cout = g * rng.randint(1, 3), g * rng.randint(1, 3)
        k = rng.randint(1, 4)
        cfg = {"in_channels": cin, "out_channels": cout, "kernel_size": k,
               "stride": rng.randint(1, 2), "padding": rng.randint(0, 2),
               "dilation": rng.randint(1, 2), "groups": g, "bias": i != 2,
               "padding_mode": ["zeros", "reflect", "replicate", "zeros", "circular", "reflect"][i]}
        if i == 5:
            cfg.update(padding="same", stride=1)
        length = rng.randint(6, 10)
        shape = [rng.randint(1, 2), cin, length] if i != 3 else [cin, length]
        out.append(Case(f"Conv1d_{i}", "Conv1d", cfg, [randn(gen, *shape)]))
    out.append(Case("Conv1d_valid", "Conv1d", {"in_channels": 2, "out_channels": 3, "kernel_size": 2,
                                               "padding": "valid"}, [randn(gen, 1, 2, 5)]))
    out.append(Case("Conv1d_bad_channels", "Conv1d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
                    [randn(gen, 2, 5, 10)]))
    out.append(Case("Conv1d_bad_rank", "Conv1d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
                    [randn(gen, 2, 3, 4, 5)]))
    out.append(Case("Conv1d_too_short", "Conv1d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
                    [randn(gen, 2, 3, 2)]))
    for nd, typ in ((1, "ConvTranspose1d"), (2, "ConvTranspose2d")):
        for i in range(5):
            g = rng.choice([1, 2])
            cin, cout = g * rng.randint(1, 3), g * rng.randint(1, 3)
            s, d = rng.randint(1, 3), rng.randint(1, 2)
            cfg = {"in_channels": cin, "out_channels": cout, "kernel_size": rng.randint(1, 3),
                   "stride": s, "padding": rng.randint(0, 1), "dilation": d, "groups": g,
                   "output_padding": rng.randint(0, max(s, d) - 1), "bias": i != 1}
            spatial = [rng.randint(2, 5) for _ in range(nd)]
            shape = ([rng.randint(1, 2)] if i != 2 else []) + [cin] + spatial
            out.append(Case(f"{typ}_{i}", typ, cfg, [randn(gen, *shape)]))
        out.append(Case(f"{typ}_bad_channels", typ, {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
                        [randn(gen, *([2, 5] + [4] * nd))]))
    out.append(Case("ConvTranspose2d_output_size", "ConvTranspose2d",
                    {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "stride": 2},
                    [randn(gen, 1, 3, 4, 5)], kwargs={"output_size": [10, 12]}))
    out.append(Case("ConvTranspose2d_bad_output_size", "ConvTranspose2d",
                    {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "stride": 2},
                    [randn(gen, 1, 3, 4, 5)], kwargs={"output_size": [9, 13]},
                    error="requested an output size of [9, 13], but valid sizes range from "
                          "[9, 11] to [10, 12]"))
    out.append(Case("ConvTranspose2d_reflect", "ConvTranspose2d",
                    {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "padding_mode": "reflect"}, []))
    out.append(Case("ConvTranspose2d_bad_rank", "ConvTranspose2d",
                    {"in_channels": 3, "out_channels": 4, "kernel_size": 3}, [randn(gen, 2, 3, 4, 5, 6)]))
    for i in range(5):
        k = rng.randint(1, 4)
        cfg = {"kernel_size": k, "stride": rng.choice([None, 1, 2]), "padding": rng.randint(0, k // 2),
               "ceil_mode": i % 2 == 1}
        mcfg = dict(cfg, dilation=rng.randint(1, 2), return_indices=i == 3)
        if mcfg["padding"] > (mcfg["dilation"] * (k - 1) + 1) // 2:
            mcfg["padding"] = 0
        shape = [rng.randint(1, 2), rng.randint(1, 3), rng.randint(5, 9)][(i == 4):]
        out.append(Case(f"MaxPool1d_{i}", "MaxPool1d", mcfg, [randn(gen, *shape)]))
        acfg = dict(cfg, count_include_pad=i != 2)
        out.append(Case(f"AvgPool1d_{i}", "AvgPool1d", acfg, [randn(gen, *shape)]))
        o = rng.choice([1, 2, 3, 5, shape[-1] + 2])
        out.append(Case(f"AdaptiveAvgPool1d_{i}", "AdaptiveAvgPool1d", {"output_size": o},
                        [randn(gen, *shape)]))
        out.append(Case(f"AdaptiveMaxPool1d_{i}", "AdaptiveMaxPool1d",
                        {"output_size": o, "return_indices": i == 1}, [randn(gen, *shape)]))
    out.append(Case("MaxPool1d_big_pad", "MaxPool1d", {"kernel_size": 3, "padding": 2},
                    [randn(gen, 1, 2, 5)]))
    out.append(Case("AvgPool1d_big_pad", "AvgPool1d", {"kernel_size": 3, "padding": 2},
                    [randn(gen, 1, 2, 5)]))
    out.append(Case("AvgPool1d_too_small", "AvgPool1d", {"kernel_size": 3}, [randn(gen, 1, 2, 2)]))
    out.append(Case("MaxPool1d_bad_rank", "MaxPool1d", {"kernel_size": 3}, [randn(gen, 1, 2, 2, 3)]))
    out.append(Case("AdaptiveAvgPool1d_bad_rank", "AdaptiveAvgPool1d", {"output_size": 3},
                    [randn(gen, 1, 2, 2, 3)]))
    # The 3-d convolution and pools (video, volumes).
    for i in range(5):
        g = rng.choice([1, 2])
        cin, cout = g * rng.randint(1, 2), g * rng.randint(1, 3)
        cfg = {"in_channels": cin, "out_channels": cout,
               "kernel_size": [3, (1, 3, 3), (2, 1, 3), 2, 3][i],
               "stride": [1, (1, 2, 2), 1, 2, 1][i], "padding": [1, (0, 1, 1), 0, 1, "same"][i],
               "dilation": [1, 1, (1, 2, 1), 1, 2][i], "groups": g, "bias": i != 1,
               "padding_mode": ["zeros", "replicate", "zeros", "circular", "reflect"][i]}
        shape = ([] if i == 2 else [rng.randint(1, 2)]) + [cin, 4, 5, 6]
        out.append(Case(f"Conv3d_{i}", "Conv3d", cfg, [randn(gen, *shape)]))
    out.append(Case("Conv3d_bad_channels", "Conv3d", {"in_channels": 3, "out_channels": 2,
                                                      "kernel_size": 1}, [randn(gen, 1, 2, 3, 3, 3)]))
    out.append(Case("Conv3d_bad_rank", "Conv3d", {"in_channels": 3, "out_channels": 2,
                                                  "kernel_size": 1}, [randn(gen, 3, 3, 3)]))
    for i, (cfg, shape) in enumerate([
            ({"kernel_size": 2}, [1, 2, 4, 4, 4]),
            ({"kernel_size": (1, 3, 3), "stride": (1, 2, 2), "padding": (0, 1, 1)}, [2, 3, 3, 5, 6]),
            ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [2, 4, 5, 6]),
            ({"kernel_size": 2, "stride": 1, "dilation": 2, "return_indices": True}, [1, 2, 5, 5, 5])]):
        out.append(Case(f"MaxPool3d_{i}", "MaxPool3d", cfg, [randn(gen, *shape)]))
    for i, (cfg, shape) in enumerate([
            ({"kernel_size": 2}, [1, 2, 4, 4, 4]),
            ({"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}, [2, 3, 5, 5, 6]),
            ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [2, 4, 5, 6]),
            ({"kernel_size": (1, 2, 2), "divisor_override": 3}, [1, 2, 3, 4, 4])]):
        out.append(Case(f"AvgPool3d_{i}", "AvgPool3d", cfg, [randn(gen, *shape)]))
    for i, (o, shape) in enumerate([(1, [1, 2, 3, 4, 5]), ((2, None, 3), [2, 3, 5, 7]),
                                    ((3, 2, 4), [1, 2, 5, 5, 6])]):
        out.append(Case(f"AdaptiveAvgPool3d_{i}", "AdaptiveAvgPool3d", {"output_size": o},
                        [randn(gen, *shape)]))
        out.append(Case(f"AdaptiveMaxPool3d_{i}", "AdaptiveMaxPool3d",
                        {"output_size": o, "return_indices": i == 2}, [randn(gen, *shape)]))
    out.append(Case("MaxPool3d_big_pad", "MaxPool3d", {"kernel_size": 3, "padding": 2},
                    [randn(gen, 1, 2, 5, 5, 5)]))
    out.append(Case("MaxPool3d_bad_rank", "MaxPool3d", {"kernel_size": 2}, [randn(gen, 2, 4, 4)]))
    out.append(Case("AvgPool3d_too_small", "AvgPool3d", {"kernel_size": 3}, [randn(gen, 1, 2, 2, 4, 4)]))
    out.append(Case("MaxPool3d_too_small", "MaxPool3d", {"kernel_size": 3}, [randn(gen, 1, 2, 2, 4, 4)]))
    out.append(Case("AvgPool3d_big_pad", "AvgPool3d", {"kernel_size": 3, "padding": 2},
                    [randn(gen, 1, 2, 5, 5, 5)]))
    out.append(Case("AvgPool3d_bad_rank", "AvgPool3d", {"kernel_size": 2}, [randn(gen, 3, 3)]))
    out.append(Case("AdaptiveAvgPool3d_bad_rank", "AdaptiveAvgPool3d", {"output_size": 2},
                    [randn(gen, 2, 3, 4)]))
    out.append(Case("AdaptiveMaxPool3d_bad_rank", "AdaptiveMaxPool3d", {"output_size": 2},
                    [randn(gen, 2, 3, 4)]))
    ups = [({"scale_factor": 2}, [1, 2, 3, 4]), ({"size": (5, 7), "mode": "bilinear"}, [1, 2, 3, 4]),
           ({"size": (5, 7), "mode": "bilinear", "align_corners": True}, [2, 1, 3, 4]),
           ({"scale_factor": 1.7, "mode": "bicubic"}, [1, 2, 4, 5]),
           ({"scale_factor": (2.5, 0.6), "mode": "bicubic", "align_corners": True}, [1, 1, 4, 5]),
           ({"size": 7, "mode": "linear"}, [2, 3, 5]), ({"scale_factor": 0.5, "mode": "linear"}, [1, 2, 9]),
           ({"size": (3, 2), "mode": "area"}, [1, 2, 7, 5]), ({"scale_factor": 0.4, "mode": "area"}, [1, 2, 7, 5]),
           ({"scale_factor": 1.5, "mode": "nearest-exact"}, [1, 2, 3, 4]),
           ({"scale_factor": 1.5, "mode": "nearest", "recompute_scale_factor": True}, [1, 2, 3, 4]),
           ({"size": (3, 4, 5), "mode": "trilinear"}, [1, 2, 2, 3, 2]),
           ({"scale_factor": 3}, [1, 2, 4]), ({"size": (2, 3, 4)}, [1, 1, 3, 3, 3]),
           # Enough planes to be split over the thread pool.
           ({"scale_factor": 2, "mode": "bilinear"}, [2, 8, 40, 40]),
           ({"size": (9, 20, 30), "mode": "trilinear", "align_corners": True}, [1, 6, 4, 10, 15])]
    for i, (cfg, shape) in enumerate(ups):
        out.append(Case(f"Upsample_{i}", "Upsample", cfg, [randn(gen, *shape)]))
    out.append(Case("UpsamplingNearest2d_0", "UpsamplingNearest2d", {"scale_factor": 2},
                    [randn(gen, 1, 2, 3, 3)]))
    out.append(Case("UpsamplingBilinear2d_0", "UpsamplingBilinear2d", {"size": (4, 6)},
                    [randn(gen, 1, 2, 3, 3)]))
    out.append(Case("Upsample_no_size", "Upsample", {}, [randn(gen, 1, 2, 3, 4)]))
    out.append(Case("Upsample_both", "Upsample", {"size": 3, "scale_factor": 2}, [randn(gen, 1, 2, 3, 4)]))
    out.append(Case("Upsample_align_nearest", "Upsample", {"size": 3, "align_corners": True},
                    [randn(gen, 1, 2, 3, 4)]))
    out.append(Case("Upsample_bilinear_3d", "Upsample", {"size": 3, "mode": "bilinear"},
                    [randn(gen, 1, 2, 3)]))
    out.append(Case("Upsample_bad_size_len", "Upsample", {"size": (3, 4, 5)}, [randn(gen, 1, 2, 3, 4)],
                    error="Input and output must have the same number of spatial dimensions, but got "
                          "input with spatial dimensions of [3, 4] and output size of (3, 4, 5)"))
    out.append(Case("Upsample_2d_input", "Upsample", {"size": 3}, [randn(gen, 2, 3)]))
    out.append(Case("Upsample_zero", "Upsample", {"scale_factor": 0.1}, [randn(gen, 1, 2, 3, 4)],
                    error="Input and output sizes should be greater than 0"))
    interp = functional(F.interpolate)
    out.append(Case("interpolate_0", "interpolate", {}, [randn(gen, 1, 2, 3, 4)],
                    kwargs={"scale_factor": 2.0, "mode": "bilinear", "align_corners": False},
                    cls=interp, op=True))
    out.append(Case("interpolate_1", "interpolate", {}, [randn(gen, 1, 2, 3, 4), [6, 5]],
                    cls=interp, op=True))
    out.append(Case("interpolate_2", "interpolate", {}, [randn(gen, 1, 2, 5), None, 0.5, "area"],
                    cls=interp, op=True))
    for i, r in enumerate([1, 2, 3]):
        c = rng.randint(1, 2)
        out.append(Case(f"PixelShuffle_{i}", "PixelShuffle", {"upscale_factor": r},
                        [randn(gen, *([2][:i % 2] + [c * r * r, rng.randint(1, 3), rng.randint(1, 3)]))]))
        out.append(Case(f"PixelUnshuffle_{i}", "PixelUnshuffle", {"downscale_factor": r},
                        [randn(gen, *([2][:i % 2] + [c, r * rng.randint(1, 2), r * rng.randint(1, 3)]))]))
    # MaxPool2d's (output, indices) and MaxUnpool2d writing back at them (SegNet).
    for i, (cfg, shape) in enumerate([
            ({"kernel_size": 2}, [2, 3, 6, 5]),
            ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [1, 2, 7, 6]),
            ({"kernel_size": (2, 3), "stride": 1, "dilation": 2}, [3, 7, 8])]):
        out.append(Case(f"MaxPool2d_indices_{i}", "MaxPool2d", dict(cfg, return_indices=True),
                        [randn(gen, *shape)]))
    for i, (cfg, shape, osize) in enumerate([
            ({"kernel_size": 2}, [2, 3, 6, 6], None),
            ({"kernel_size": 2, "stride": 2}, [1, 2, 7, 5], [7, 5]),
            ({"kernel_size": 3, "stride": 2, "padding": 1}, [1, 2, 7, 6], [1, 2, 7, 6]),
            ({"kernel_size": (2, 3), "stride": (2, 1)}, [2, 6, 5], None)]):
        pooled, idx = F.max_pool2d(randn(gen, *shape), return_indices=True, **cfg)
        kwargs = {"output_size": osize} if osize else {}
        out.append(Case(f"MaxUnpool2d_{i}", "MaxUnpool2d", cfg, [pooled, idx], kwargs=kwargs))
    pooled, idx = F.max_pool2d(randn(gen, 1, 2, 4, 4), 2, return_indices=True)
    out.append(Case("max_unpool2d_fn", "max_unpool2d", {"kernel_size": 2}, [pooled, idx],
                    kwargs={"output_size": [5, 5]},
                    cls=lambda kernel_size: functional(
                        lambda x, i, output_size: F.max_unpool2d(x, i, kernel_size,
                                                                 output_size=output_size))(),
                    op=True))
    out.append(Case("MaxUnpool2d_bad_indices_shape", "MaxUnpool2d", {"kernel_size": 2},
                    [pooled, idx[:, :1]]))
    out.append(Case("MaxUnpool2d_bad_rank", "MaxUnpool2d", {"kernel_size": 2},
                    [pooled[0, 0], idx[0, 0]]))
    out.append(Case("MaxUnpool2d_bad_output_size", "MaxUnpool2d", {"kernel_size": 2},
                    [pooled, idx], kwargs={"output_size": [9, 9]},
                    error="invalid output_size (dim 0 must be between 2 and 6, found 9)"))
    out.append(Case("MaxUnpool2d_output_size_len", "MaxUnpool2d", {"kernel_size": 2},
                    [pooled, idx], kwargs={"output_size": [4, 4, 4]}))
    out.append(Case("MaxUnpool2d_bad_index", "MaxUnpool2d", {"kernel_size": 2},
                    [pooled, torch.full_like(idx, 99)], data_error=True))
    out.append(Case("MaxUnpool2d_int32_indices", "MaxUnpool2d", {"kernel_size": 2},
                    [pooled, idx.int()],
                    error="argument 'indices'"))
    # Unfold (im2col) and Fold (col2im, overlaps summed).
    for i, (cfg, shape) in enumerate([
            ({"kernel_size": 2}, [2, 3, 4, 5]),
            ({"kernel_size": (2, 3), "stride": 2, "padding": 1, "dilation": (1, 2)}, [1, 2, 6, 7]),
            ({"kernel_size": 3, "padding": 1}, [2, 5, 4])]):
        out.append(Case(f"Unfold_{i}", "Unfold", cfg, [randn(gen, *shape)]))
        blocks = F.unfold(torch.zeros(*([1] * (4 - len(shape)) + shape)), **cfg)
        out.append(Case(f"Fold_{i}", "Fold", dict(cfg, output_size=tuple(shape[-2:])),
                        [randn(gen, *([shape[0]] if len(shape) == 4 else []),
                               *blocks.shape[1:])]))
    out.append(Case("unfold_fn", "torch.nn.functional.unfold", {"kernel_size": 2, "stride": 2},
                    [randn(gen, 1, 2, 4, 4)],
                    cls=lambda **cfg: functional(lambda x: F.unfold(x, **cfg))(), op=True))
    out.append(Case("fold_fn", "fold", {"output_size": (4, 4), "kernel_size": 2, "stride": 2},
                    [randn(gen, 1, 8, 4)],
                    cls=lambda **cfg: functional(lambda x: F.fold(x, **cfg))(), op=True))
    out.append(Case("Unfold_2d", "Unfold", {"kernel_size": 2}, [randn(gen, 5, 5)],
                    error="Expected 3D or 4D (batch mode) tensor for input with possibly 0 batch "
                          "size and non-zero dimensions for input, but got: [5, 5]"))
    out.append(Case("Unfold_too_big", "Unfold", {"kernel_size": 7}, [randn(gen, 1, 2, 5, 5)]))
    out.append(Case("Fold_blocks", "Fold", {"output_size": (5, 5), "kernel_size": 2},
                    [randn(gen, 2, 12, 4)]))
    out.append(Case("Fold_indivisible", "Fold", {"output_size": (5, 5), "kernel_size": 2},
                    [randn(gen, 2, 13, 16)]))
    out.append(Case("Fold_4d", "Fold", {"output_size": (5, 5), "kernel_size": 2},
                    [randn(gen, 2, 12, 16, 1)]))
    for i, (g, shape) in enumerate([(2, [2, 4, 3, 3]), (3, [1, 6, 5]), (1, [2, 3, 2, 2, 2])]):
        out.append(Case(f"ChannelShuffle_{i}", "ChannelShuffle", {"groups": g}, [randn(gen, *shape)]))
    out.append(Case("channel_shuffle_fn", "channel_shuffle", {}, [randn(gen, 2, 6, 4), 3],
                    cls=functional(F.channel_shuffle), op=True))
    out.append(Case("channel_shuffle_fn_int", "channel_shuffle", {},
                    [torch.arange(24).view(1, 4, 6), 2], cls=functional(F.channel_shuffle), op=True))
    out.append(Case("ChannelShuffle_indivisible", "ChannelShuffle", {"groups": 2}, [randn(gen, 2, 3, 4)]))
    out.append(Case("ChannelShuffle_2d", "ChannelShuffle", {"groups": 2}, [randn(gen, 4, 2)]))
    out.append(Case("channel_shuffle_fn_zero_groups", "channel_shuffle", {}, [randn(gen, 1, 4, 2), 0],
                    cls=functional(F.channel_shuffle), op=True))
    out.append(Case("PixelShuffle_bad", "PixelShuffle", {"upscale_factor": 2}, [randn(gen, 1, 3, 2, 2)]))
    out.append(Case("PixelShuffle_2d", "PixelShuffle", {"upscale_factor": 2}, [randn(gen, 3, 2)]))
    out.append(Case("PixelUnshuffle_bad", "PixelUnshuffle", {"downscale_factor": 2}, [randn(gen, 1, 3, 3, 2)]))
    return out
