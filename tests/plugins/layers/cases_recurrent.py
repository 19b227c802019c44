"""Reference cases for plugins/recurrent: random configurations."""
import torch

from reference import Case


def randn(gen, *shape):
    return torch.randn(*shape, generator=gen)


def cases(rng, gen):
    out = []
    for typ in ("RNN", "LSTM", "GRU"):
        for i in range(6):
            inp, hid = rng.randint(1, 4), rng.randint(1, 5)
            layers, dirs = rng.randint(1, 3), rng.choice([1, 2])
            cfg = {"input_size": inp, "hidden_size": hid, "num_layers": layers,
                   "bias": i != 1, "batch_first": i in (2, 4), "bidirectional": dirs == 2,
                   "dropout": 0.25 if layers > 1 else 0.0}
            if typ == "RNN":
                cfg["nonlinearity"] = rng.choice(["tanh", "relu"])
            out_size = hid
            if typ == "LSTM" and i in (3, 4) and hid > 1:
                cfg["proj_size"] = out_size = rng.randint(1, hid - 1)
            length, n = rng.randint(1, 5), rng.randint(1, 3)
            unbatched = i == 5
            if unbatched:
                x = randn(gen, length, inp)
            elif cfg["batch_first"]:
                x = randn(gen, n, length, inp)
            else:
                x = randn(gen, length, n, inp)
            args = [x]
            if i in (3, 4, 5):
                lead = [dirs * layers] + ([] if unbatched else [n])
                h0 = randn(gen, *(lead + [out_size]))
                args.append((h0, randn(gen, *(lead + [hid]))) if typ == "LSTM" else h0)
            out.append(Case(f"{typ}_{i}", typ, cfg, args))
        # Wider: 9 rows (the packed step kernel's blocks of 6 rows and a
        # remainder) and gate widths that are no multiple of its 16 columns.
        wide = {"input_size": 5, "hidden_size": 13, "num_layers": 2,
                "bidirectional": True}
        out.append(Case(f"{typ}_wide", typ, wide, [randn(gen, 6, 9, 5)]))
        base = {"input_size": 3, "hidden_size": 4, "num_layers": 2}
        out.append(Case(f"{typ}_bad_features", typ, base, [randn(gen, 5, 2, 4)]))
        out.append(Case(f"{typ}_bad_rank", typ, base, [randn(gen, 5, 2, 3, 1)],
                        error=f"{typ}: Expected input to be 2-D or 3-D but received 4-D tensor"))
        if typ == "LSTM":
            out.append(Case("LSTM_bad_h", typ, base, [randn(gen, 5, 2, 3),
                                                      (randn(gen, 1, 2, 4), randn(gen, 2, 2, 4))]))
            out.append(Case("LSTM_bad_c", typ, base, [randn(gen, 5, 2, 3),
                                                      (randn(gen, 2, 2, 4), randn(gen, 1, 2, 4))]))
            out.append(Case("LSTM_unbatched_3d_state", typ, base,
                            [randn(gen, 5, 3), (randn(gen, 2, 2, 4), randn(gen, 2, 2, 4))]))
            out.append(Case("LSTM_bad_proj", typ, {"input_size": 3, "hidden_size": 4, "proj_size": 4}, []))
        else:
            out.append(Case(f"{typ}_bad_h", typ, base, [randn(gen, 5, 2, 3), randn(gen, 1, 2, 4)]))
            out.append(Case(f"{typ}_unbatched_3d_state", typ, base,
                            [randn(gen, 5, 3), randn(gen, 2, 2, 4)]))
    out.append(Case("RNN_bad_nonlinearity", "RNN", {"input_size": 3, "hidden_size": 4,
                                                    "nonlinearity": "foo"}, [],
                    error="foo"))
    for typ in ("RNNCell", "LSTMCell", "GRUCell"):
        for i in range(4):
            inp, hid = rng.randint(1, 4), rng.randint(1, 5)
            cfg = {"input_size": inp, "hidden_size": hid, "bias": i != 1}
            if typ == "RNNCell":
                cfg["nonlinearity"] = ["tanh", "relu"][i % 2]
            n = rng.randint(1, 3)
            shape = [n, inp] if i != 3 else [inp]
            hshape = [n, hid] if i != 3 else [hid]
            args = [randn(gen, *shape)]
            if i >= 2:
                args.append((randn(gen, *hshape), randn(gen, *hshape)) if typ == "LSTMCell"
                            else randn(gen, *hshape))
            out.append(Case(f"{typ}_{i}", typ, cfg, args))
        base = {"input_size": 3, "hidden_size": 4}
        out.append(Case(f"{typ}_bad_features", typ, base, [randn(gen, 2, 5)]))
        out.append(Case(f"{typ}_bad_rank", typ, base, [randn(gen, 2, 2, 3)]))
        h = randn(gen, 3, 4)
        out.append(Case(f"{typ}_bad_batch", typ, base,
                        [randn(gen, 2, 3), (h, randn(gen, 3, 4)) if typ == "LSTMCell" else h]))
    return out
