"""Hand-written models as people write them, for the conformance tests.

Each entry of MODELS builds a model with seeded random weights and gives
its example inputs (forward argument name -> tensor) at a batch size and a
second, different input extent for the size check.
"""

import collections
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import handwritten2


class LoopedMLP(nn.Module):
    """A ModuleList looped in forward after x.view(-1, N)."""

    def __init__(self, n=48, hidden=32, depth=3):
        super().__init__()
        self.n = n
        self.inp = nn.Linear(n, hidden)
        self.layers = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(depth)])
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, 10)

    def forward(self, x):
        x = x.view(-1, self.n)
        x = self.act(self.inp(x))
        for layer in self.layers:
            x = x + self.act(layer(x))
        return self.out(x)


class Heads(nn.Module):
    """A ModuleDict indexed by a key fixed at construction."""

    def __init__(self, task="cls"):
        super().__init__()
        self.task = task
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleDict({"cls": nn.Linear(8, 5), "reg": nn.Linear(8, 2)})

    def forward(self, x):
        return self.heads[self.task](self.body(x))


class Scale(nn.Module):
    """Owns an nn.Parameter and a buffer and has its own forward."""

    def __init__(self, channels=8):
        super().__init__()
        self.gamma = nn.Parameter(torch.randn(1, channels, 1, 1))
        self.register_buffer("shift", torch.randn(channels).view(1, channels, 1, 1))

    def forward(self, x):
        return x * self.gamma + self.shift


class ScaledConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.scale = Scale(8)

    def forward(self, x):
        return self.scale(self.conv(x)).relu()


class TupleAndDict(nn.Module):
    """A child returning a tuple, the model returning a dict."""

    class Split(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 1)

        def forward(self, x):
            y = self.conv(x)
            return y.relu(), y.sigmoid()

    def __init__(self):
        super().__init__()
        self.split = self.Split()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        a, b = self.split(x)
        return {"a": self.pool(a).flatten(1), "both": a * b}


class TwoInputs(nn.Module):
    """Two inputs, one int64: `x + ids.float()` and gather."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 16)

    def forward(self, x, ids):
        y = self.proj(x) + ids.float()
        return torch.gather(y, 1, ids)


class ChannelShuffle(nn.Module):
    """size() unpacking and integer arithmetic on the sizes."""

    def __init__(self, groups=2):
        super().__init__()
        self.groups = groups
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        b, c, h, w = x.size()
        x = x.view(b, self.groups, c // self.groups, h, w)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(b, -1, h * w)


class DenseStack(nn.Module):
    """Children called with a growing list of tensors, as DenseNet's."""

    class Layer(nn.Module):
        def __init__(self, cin):
            super().__init__()
            self.conv = nn.Conv2d(cin, 4, 3, padding=1)

        def forward(self, inputs):
            return self.conv(torch.cat(inputs, 1)).relu()

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([self.Layer(3 + 4 * i) for i in range(3)])

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


class CausalSelfAttention(nn.Module):
    """GPT attention as people write it: q, k and v split from one Linear,
    size() unpacking, view and transpose into heads, a causal mask from a
    registered tril buffer applied with masked_fill, math.sqrt of a size."""

    def __init__(self, c=32, heads=4, t=16):
        super().__init__()
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.n_head = heads
        self.register_buffer("bias", torch.tril(torch.ones(t, t)).view(1, 1, t, t))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class GPTBlock(nn.Module):
    """Pre-norm block: attention and a GELU MLP, each added back."""

    def __init__(self, c=32, heads=4, t=16):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c)
        self.attn = CausalSelfAttention(c, heads, t)
        self.ln_2 = nn.LayerNorm(c)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(c, 4 * c), act=nn.GELU(),
                                      c_proj=nn.Linear(4 * c, c)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        m = self.mlp
        return x + m.c_proj(m.act(m.c_fc(self.ln_2(x))))


class TinyGPT(nn.Module):
    """Token and position embeddings, blocks in a ModuleList, lm_head
    weight-tied to the token embedding."""

    def __init__(self, vocab=50, c=32, t=16, heads=4):
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.wpe = nn.Embedding(t, c)
        self.h = nn.ModuleList([GPTBlock(c, heads, t) for _ in range(2)])
        self.ln_f = nn.LayerNorm(c)
        self.lm_head = nn.Linear(c, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class TextClassifier(nn.Module):
    """Token ids and a bool padding mask (True = padding) through
    nn.TransformerEncoder (batch_first), mean over tokens, Linear.  In eval
    PyTorch takes the nested-tensor path: padded positions come back as 0
    and the sequence is cut to the longest row, and the mean sees that."""

    def __init__(self, vocab=40, d=32, heads=4, ff=64, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, d, padding_idx=0)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        self.fc = nn.Linear(d, classes)

    def forward(self, ids, padding_mask):
        x = self.encoder(self.embed(ids), src_key_padding_mask=padding_mask)
        return self.fc(x.mean(dim=1))


class LSTMTagger(nn.Module):
    """A tag per token: Embedding, bidirectional 2-layer LSTM, Linear."""

    def __init__(self, vocab=40, d=16, hidden=24, tags=7):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.lstm = nn.LSTM(d, hidden, num_layers=2, bidirectional=True,
                            batch_first=True)
        self.tag = nn.Linear(2 * hidden, tags)

    def forward(self, ids):
        out, _ = self.lstm(self.embed(ids))
        return F.log_softmax(self.tag(out), dim=-1)


class GRUClassifier(nn.Module):
    """Classifies from the GRU's last hidden state h_n[-1]."""

    def __init__(self, vocab=40, d=16, hidden=32, classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.gru = nn.GRU(d, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, ids):
        _, h = self.gru(self.embed(ids))
        return self.fc(h[-1])


class SmallUNet(nn.Module):
    """Two levels down, skip concatenation on the way up: one level up by
    ConvTranspose2d, the other by bilinear Upsample; GroupNorm throughout."""

    @staticmethod
    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1),
                             nn.GroupNorm(4, cout), nn.ReLU(inplace=True))

    def __init__(self, cin=3, classes=2):
        super().__init__()
        self.enc1 = self.block(cin, 8)
        self.enc2 = self.block(8, 16)
        self.pool = nn.MaxPool2d(2)
        self.mid = self.block(16, 32)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec2 = self.block(32, 16)
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.dec1 = self.block(16 + 8, 8)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)


class AudioCNN(nn.Module):
    """1-d CNN over a waveform: Conv1d, BatchNorm1d, MaxPool1d stages,
    AdaptiveAvgPool1d, Linear."""

    def __init__(self, classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 8, 9, stride=2, padding=4), nn.BatchNorm1d(8), nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(8, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU(),
            nn.AdaptiveAvgPool1d(1))
        self.fc = nn.Linear(16, classes)
        # Running statistics away from (0, 1), so eval-mode BatchNorm is seen.
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(10)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class Seq2SeqTransformer(nn.Module):
    """Token embeddings into a full nn.Transformer (sequence-first), a causal
    tgt_mask from generate_square_subsequent_mask, Linear head."""

    def __init__(self, vocab=30, d=16):
        super().__init__()
        self.src_emb = nn.Embedding(vocab, d)
        self.tgt_emb = nn.Embedding(vocab, d)
        self.transformer = nn.Transformer(d, 2, 1, 1, 32, dropout=0.1)
        self.out = nn.Linear(d, vocab)

    def forward(self, src, tgt):
        s = self.src_emb(src).transpose(0, 1)
        t = self.tgt_emb(tgt).transpose(0, 1)
        mask = self.transformer.generate_square_subsequent_mask(t.size(0))
        y = self.transformer(s, t, tgt_mask=mask)
        return self.out(y.transpose(0, 1))


def _src_tgt(batch, size):
    g = _generator(batch, size)
    return {"src": torch.randint(0, 30, (batch, size), generator=g),
            "tgt": torch.randint(0, 30, (batch, size - 1), generator=g)}


class PatchViT(nn.Module):
    """A ViT written by hand: patches with Tensor.unfold, a cls token and
    position embedding as Parameters, a pre-norm TransformerEncoder (gelu)."""

    def __init__(self, p=4, d=32, depth=2, classes=5, n=16):
        super().__init__()
        self.p = p
        self.proj = nn.Linear(3 * p * p, d)
        self.cls = nn.Parameter(torch.randn(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.enc = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        B, C, H, W = x.shape
        p = self.p
        x = x.unfold(2, p, p).unfold(3, p, p)  # B C h w p p
        x = x.permute(0, 2, 3, 1, 4, 5).reshape(B, -1, C * p * p)
        x = self.proj(x)
        cls = self.cls.expand(B, -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos[:, : x.shape[1] + 1]
        x = self.enc(x)
        return self.head(self.norm(x[:, 0]))


class CrossAttn(nn.Module):
    """MultiheadAttention with kdim/vdim and per-head weights returned, then
    a sequence-first one with a float causal attn_mask and no weights."""

    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 4, kdim=12, vdim=8, batch_first=True)
        self.self_attn = nn.MultiheadAttention(16, 2)

    def forward(self, q, kv):
        k = kv[..., :12]
        v = kv[..., 12:20]
        y, w = self.mha(q, k, v, need_weights=True, average_attn_weights=False)
        T = q.shape[1]
        mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
        z, _ = self.self_attn(y.transpose(0, 1), y.transpose(0, 1), y.transpose(0, 1),
                              attn_mask=mask, need_weights=False)
        return z.transpose(0, 1), w


def _qkv(batch, size):
    g = _generator(batch, size)
    return {"q": torch.randn(batch, size, 16, generator=g),
            "kv": torch.randn(batch, size + 2, 20, generator=g)}


class ProjLSTM(nn.Module):
    """A bidirectional 2-layer LSTM with proj_size, given (h0, c0), returning
    the output and both final states."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, num_layers=2, proj_size=6, bidirectional=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x, h0, c0):
        out, (h, c) = self.lstm(x, (h0, c0))
        return self.fc(out), h, c


def _lstm_in(batch, size):
    g = _generator(batch, size)
    return {"x": torch.randn(size, batch, 8, generator=g),
            "h0": torch.randn(4, batch, 6, generator=g),
            "c0": torch.randn(4, batch, 16, generator=g)}


class CellLoop(nn.Module):
    """LSTMCell and GRUCell stepped over time in a Python loop, states
    started with new_zeros / torch.zeros, outputs stacked."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(8, 16)
        self.gcell = nn.GRUCell(16, 12)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        B, T, _ = x.shape
        h = x.new_zeros(B, 16)
        c = x.new_zeros(B, 16)
        g = torch.zeros(B, 12)
        outs = []
        for t in range(T):
            h, c = self.cell(x[:, t], (h, c))
            g = self.gcell(h, g)
            outs.append(self.fc(g))
        return torch.stack(outs, 1)


class Seq2SeqGRU(nn.Module):
    """GRU encoder (sequence-first), GRUCell decoder unrolled for a fixed
    number of steps, each feeding back its argmax token."""

    def __init__(self, vocab=20, d=12, h=16, steps=4):
        super().__init__()
        self.steps = steps
        self.emb = nn.Embedding(vocab, d)
        self.enc = nn.GRU(d, h, batch_first=False)
        self.dec = nn.GRUCell(d, h)
        self.out = nn.Linear(h, vocab)

    def forward(self, ids):
        e = self.emb(ids.t())
        _, hn = self.enc(e)
        h = hn[0]
        tok = ids[:, 0]
        logits = []
        for _ in range(self.steps):
            h = self.dec(self.emb(tok), h)
            lo = self.out(h)
            logits.append(lo)
            tok = lo.argmax(-1)
        return torch.stack(logits, 1)


class InterpUNet(nn.Module):
    """Skips joined after F.interpolate: bilinear to a size read from a
    tensor (align_corners=True), nearest by scale 2, bilinear by 0.5."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.u1 = nn.Conv2d(32, 8, 3, padding=1)
        self.u2 = nn.Conv2d(16, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        a = F.relu(self.c1(x))
        b = F.relu(self.c2(a))
        c = F.relu(self.c3(b))
        c = F.interpolate(c, size=b.shape[-2:], mode="bilinear", align_corners=True)
        b = F.relu(self.u1(torch.cat([c, b], 1)))
        b = F.interpolate(b, scale_factor=2, mode="nearest")
        a = F.relu(self.u2(torch.cat([b, a], 1)))
        y = self.head(a)
        return F.interpolate(y, scale_factor=0.5, mode="bilinear", align_corners=False)


class ESPCN(nn.Module):
    """Sub-pixel super-resolution: convolutions, then nn.PixelShuffle."""

    def __init__(self, r=2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 5, padding=2), nn.Tanh(),
                                  nn.Conv2d(16, 8, 3, padding=1), nn.Tanh(),
                                  nn.Conv2d(8, 3 * r * r, 3, padding=1))
        self.ps = nn.PixelShuffle(r)

    def forward(self, x):
        return torch.sigmoid(self.ps(self.body(x)))


class NormZoo(nn.Module):
    """InstanceNorm2d with and without affine, GroupNorm, LayerNorm over the
    last three dims."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.ln = nn.LayerNorm([8, 12, 12])
        self.gn = nn.GroupNorm(2, 8)
        self.inorm_plain = nn.InstanceNorm2d(8)

    def forward(self, x):
        y = self.inorm(self.conv(x))
        y = self.gn(y) + self.inorm_plain(y)
        return self.ln(y)


class BagModel(nn.Module):
    """EmbeddingBag (mean), a padding_idx Embedding, a ParameterList and a
    ParameterDict read in forward, a dict result from a ModuleDict loop."""

    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(30, 8, mode="mean")
        self.emb = nn.Embedding(30, 8, padding_idx=0)
        self.scales = nn.ParameterList([nn.Parameter(torch.randn(8)) for _ in range(2)])
        self.biases = nn.ParameterDict({"a": nn.Parameter(torch.randn(8)),
                                        "b": nn.Parameter(torch.randn(8))})
        self.heads = nn.ModuleDict({"x": nn.Linear(8, 3), "y": nn.Linear(8, 2)})

    def forward(self, ids):
        a = self.bag(ids) * self.scales[0] + self.biases["a"]
        b = self.emb(ids).sum(1) * self.scales[1] + self.biases["b"]
        return {k: h(a + b) for k, h in self.heads.items()}


class OpSoup(nn.Module):
    """Tensor functions in forward: chunk, stack, list(unbind), where, clamp,
    topk, cumsum, einsum, softmax(dim=-2), bmm, masked_fill, argmax,
    max(dim).values, a scalar mean; a buffer read in forward."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(12, 12)
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 12))

    def forward(self, x):
        y = self.lin(x) * self.scale
        a, b, c = torch.chunk(y, 3, dim=-1)
        s = torch.stack([a, b, c], 0).sum(0)
        u = list(torch.unbind(s, 1))
        z = torch.where(s > 0, s, s * 0.1).clamp(-1.0, 1.0)
        vals, idx = torch.topk(y, 3, dim=-1)
        cs = torch.cumsum(y, dim=1)
        e = torch.einsum("btd,bsd->bts", y, y)
        sm = F.softmax(e, dim=-2)
        ls = F.log_softmax(y, dim=-1)
        m = torch.bmm(sm, y)
        mf = y.masked_fill(y < 0, 0.0)
        return (z, vals, idx, cs, m, ls, mf, u[0], y.argmax(-1), y.max(dim=1).values,
                torch.flatten(y, 1).mean())


class OpSoup2(nn.Module):
    """More functions: x.where(c, y), in-place abs_/transpose_/exp_, sign,
    trunc, reciprocal, functional activations, sort, mm, isfinite,
    logical_xor, cumprod, select, argsort, and losses computed in forward."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.prelu_w = nn.Parameter(torch.tensor([0.2]))

    def forward(self, x, y):
        h = self.lin(x)
        a = h.where(h > 0, torch.zeros_like(h))
        b = torch.reciprocal(h.abs() + 1).sign() * torch.trunc(h * 3)
        c = F.selu(h) + F.celu(h, 0.7) + F.logsigmoid(h) + F.softsign(h) + F.tanhshrink(h)
        d = F.threshold(h, 0.1, -2.0) + F.hardshrink(h, 0.3) + F.softshrink(h) + F.prelu(h, self.prelu_w)
        e = F.glu(h, -1)
        s, idx = torch.sort(h, dim=-1, descending=True)
        g = h.clone()
        g.abs_()
        g.transpose_(0, 1)
        g.exp_()
        m = torch.mm(h.flatten(0, -2), h.flatten(0, -2).t())
        k = torch.isfinite(h) & torch.greater(h, -5.0)
        q = torch.logical_xor(h > 0, h < 0.5)
        r = h.cumprod(-1) + torch.select(h, -1, 2).unsqueeze(-1)
        loss = F.mse_loss(h, y) + F.cross_entropy(h.flatten(0, -2), y.flatten(0, -2).argmax(-1))
        return a, b, c, d, e, s, idx, g, m, k, q, r, torch.argsort(h, -1), loss


def _xy(batch, size):
    g = _generator(batch, size)
    return {"x": torch.randn(batch, size, 8, generator=g), "y": torch.randn(batch, size, 8, generator=g)}


class ActZoo(nn.Module):
    """Activation modules in a ModuleList applied in a comprehension."""

    def __init__(self):
        super().__init__()
        self.acts = nn.ModuleList([nn.Mish(), nn.SiLU(), nn.Hardswish(), nn.SELU(), nn.CELU(0.5),
                                   nn.Softsign(), nn.Tanhshrink(), nn.Threshold(0.1, -1.0),
                                   nn.RReLU(), nn.LogSigmoid(), nn.Softmin(dim=1),
                                   nn.Hardshrink(0.3), nn.Softshrink(0.2), nn.PReLU(),
                                   nn.ELU(), nn.LeakyReLU(0.05), nn.GLU(-1), nn.Hardtanh(-2, 2),
                                   nn.ReLU6(), nn.Sigmoid(), nn.Softplus(2, 10)])
        self.sm2d = nn.Softmax2d()

    def forward(self, x):
        outs = [a(x) for a in self.acts]
        return torch.cat([o.flatten(1) for o in outs], 1), self.sm2d(x)


class Shapes(nn.Module):
    """nn.Flatten, nn.Unflatten (one built from a list, which print(model)
    shows as a list), nn.Identity, Dropout and Dropout1d in eval, and
    arithmetic with x.shape[-1]."""

    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.unflat = nn.Unflatten(1, (3, -1))
        self.regroup = nn.Unflatten(2, [3, 4])
        self.idn = nn.Identity()
        self.drop = nn.Dropout(0.3)
        self.d2 = nn.Dropout1d(0.2)
        self.fc = nn.Linear(36, 36)

    def forward(self, x):
        y = self.drop(self.fc(self.flat(x)[:, :36]))
        y = self.unflat(y)
        return self.regroup(self.idn(self.d2(y))), x.shape[-1] * y


class TiedRNNLM(nn.Module):
    """An Elman RNN language model with a bool keep-mask input, lm head tied
    to the embedding, returning (logits, hidden)."""

    def __init__(self, vocab=25, d=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.rnn = nn.RNN(d, d, nonlinearity="tanh", batch_first=True)
        self.head = nn.Linear(d, vocab)
        self.head.weight = self.emb.weight

    def forward(self, ids, keep):
        x = self.emb(ids) * keep.unsqueeze(-1).float()
        out, h = self.rnn(x)
        return self.head(out), h


def _ids_keep(batch, size):
    g = _generator(batch, size)
    return {"ids": torch.randint(0, 25, (batch, size), generator=g),
            "keep": torch.rand(batch, size, generator=g) > 0.3}


class DecoderOnly(nn.Module):
    """TransformerDecoder (pre-norm, final LayerNorm) with a bool causal
    tgt_mask and a memory_key_padding_mask built in forward."""

    def __init__(self, d=16):
        super().__init__()
        layer = nn.TransformerDecoderLayer(d, 2, 32, 0.0, batch_first=True, norm_first=True)
        self.dec = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(d))

    def forward(self, tgt, memory):
        T = tgt.shape[1]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        pad = torch.zeros(memory.shape[0], memory.shape[1], dtype=torch.bool)
        pad[:, -1] = True
        return self.dec(tgt, memory, tgt_mask=mask, memory_key_padding_mask=pad)


def _tgt_mem(batch, size):
    g = _generator(batch, size)
    return {"tgt": torch.randn(batch, size, 16, generator=g),
            "memory": torch.randn(batch, size + 3, 16, generator=g)}


class AE1d(nn.Module):
    """1-d autoencoder: strided Conv1d down, ConvTranspose1d up, linear
    Upsample (align_corners=True)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv1d(2, 8, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv1d(8, 16, 4, 2, 1))
        self.dec = nn.Sequential(nn.ConvTranspose1d(16, 8, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose1d(8, 2, 4, 2, 1))
        self.up = nn.Upsample(scale_factor=2, mode="linear", align_corners=True)

    def forward(self, x):
        return self.up(self.dec(self.enc(x)))


def _wave2(batch, size):
    return {"x": torch.randn(batch, 2, size, generator=_generator(batch, size))}


class Functional1d(nn.Module):
    """F.conv1d with Parameters, F.max_pool1d / avg_pool1d /
    adaptive_avg_pool1d, BatchNorm1d without running stats, LayerNorm
    without affine, F.one_hot, a float arange, repeat_interleave, .to(float64)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 4, 3) * 0.3)
        self.b = nn.Parameter(torch.randn(6) * 0.1)
        self.ln = nn.LayerNorm(6, elementwise_affine=False)
        self.bn = nn.BatchNorm1d(6, track_running_stats=False)
        self.gelu = nn.GELU(approximate="tanh")

    def forward(self, x, cls):
        y = F.conv1d(x, self.w, self.b, padding=1)
        y = F.max_pool1d(y, 2) + F.avg_pool1d(y, 2)
        y = F.adaptive_avg_pool1d(y, 4)
        y = self.gelu(self.bn(y))
        z = self.ln(y.transpose(1, 2))
        oh = F.one_hot(cls, 6).float()
        t = torch.arange(0.0, 1.0, 0.25)
        r = torch.repeat_interleave(z, 2, dim=1)
        return z * t[None, :, None] + oh.unsqueeze(1), r, x.to(torch.float64).sum(-1)


def _f1d(batch, size):
    g = _generator(batch, size)
    return {"x": torch.randn(batch, 4, size, generator=g),
            "cls": torch.randint(0, 6, (batch,), generator=g)}


class BertEmbed(nn.Module):
    """BERT-style embeddings: positions from cumsum over the padding mask,
    token types, LayerNorm(eps=1e-12), an encoder layer with F.gelu and
    a key padding mask."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(30, 16, padding_idx=0)
        self.pos = nn.Embedding(40, 16)
        self.typ = nn.Embedding(2, 16)
        self.ln = nn.LayerNorm(16, eps=1e-12)
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, 0.1, activation=F.gelu, batch_first=True)

    def forward(self, ids, types):
        mask = ids.ne(0)
        pos = torch.cumsum(mask.int(), dim=1).long() * mask.long()
        x = self.ln(self.tok(ids) + self.pos(pos) + self.typ(types))
        x = self.layer(x, src_key_padding_mask=~mask)
        return x[:, 0], mask.sum(1)


def _bert(batch, size):
    g = _generator(batch, size)
    ids = torch.randint(1, 30, (batch, size), generator=g)
    ids[:, -2:] = 0
    return {"ids": ids, "types": (torch.arange(size) >= size // 2).long().expand(batch, -1).contiguous()}


class Nested(nn.Module):
    """A ModuleList of ModuleLists looped, a Sequential built from an
    OrderedDict, a non-persistent buffer read in forward, an optional mask
    argument, a list result."""

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)]) for _ in range(2)])
        self.head = nn.Sequential(collections.OrderedDict([("fc", nn.Linear(8, 4)), ("act", nn.Tanh())]))
        self.register_buffer("scale", torch.full((8,), 0.5), persistent=False)

    def forward(self, x, mask=None):
        outs = []
        for stage in self.stages:
            for layer in stage:
                x = F.silu(layer(x)) * self.scale
            outs.append(x)
        if mask is not None:
            x = x * mask.unsqueeze(-1)
        outs.append(self.head(x))
        return outs


def _nested(batch, size):
    g = _generator(batch, size)
    return {"x": torch.randn(batch, size, 8, generator=g), "mask": (torch.rand(batch, size, generator=g) > 0.5).float()}


class IndexZoo(nn.Module):
    """Indexing as people write it: negative ints, ..., None, slices,
    integer tensors, writes through an index and a bool mask, gather with an
    expanded index, reductions over dim tuples, and a bool-mask sum."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x, idx):
        y = self.lin(x)
        a = y[:, -1]
        b = y[..., None, 1:4]
        c = y[0, idx]
        d = y[:, idx]
        y2 = y.clone()
        y2[:, 0] = 0.0
        y2[y2 < -1] = -1.0
        e = torch.gather(y, 1, idx.view(1, -1, 1).expand(y.shape[0], -1, y.shape[2]))
        f = y.sum(dim=(1, 2)), y.std(dim=-1, unbiased=False), y.var(1)
        g = torch.max(y, y.flip(-1)), torch.cat([y, -y], dim=-1).norm(p=2, dim=-1)
        return a, b, c, d, y2, e, f, g, y[y > 0.5].sum()


def _x_idx(batch, size):
    g = _generator(batch, size)
    return {"x": torch.randn(batch, size, 6, generator=g), "idx": torch.tensor([0, size - 1, 1])}


class ScaledLinear(nn.Linear):
    """A torch.nn layer subclassed with its own forward (traced, not the
    Linear converter), calling super().forward."""

    def forward(self, x):
        return super().forward(x) * 2.0


class StdConv2d(nn.Conv2d):
    """BiT's weight-standardised convolution."""
    def forward(self, x):
        w = self.weight
        v, m = torch.var_mean(w, dim=[1, 2, 3], keepdim=True, unbiased=False)
        w = (w - m) / torch.sqrt(v + 1e-10)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def swish(x):
    return x * torch.sigmoid(x)


class Subclasses(nn.Module):
    """Subclassed layers, a module-level helper function, a property and a
    forward argument with a float default."""

    def __init__(self):
        super().__init__()
        self.conv = StdConv2d(3, 8, 3, padding=1)
        self.lin = ScaledLinear(8, 4)

    @property
    def scale(self):
        return 0.5

    def forward(self, x, temperature=2.0):
        y = swish(self.conv(x))
        y = F.adaptive_avg_pool2d(y, 1).view(y.size(0), -1)
        return self.lin(y) / temperature * self.scale


class SplitsAndSizes(nn.Module):
    """split by sizes, torch.Size slicing and numel(), new_tensor,
    masked_fill, a torch.Size in the result."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x):
        a, b = torch.split(x, [2, 4], dim=-1)
        n = x.shape[1:].numel()
        y = self.lin(torch.cat([b, a], -1)).flatten(start_dim=1) / n
        z = x.new_tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        m = x.masked_fill(x < 0, 0.0)
        return y, (x * z).T if x.dim() == 2 else (x * z).transpose(-1, -2), m, x.size()[1:]


class Pixel(nn.Module):
    """F.pixel_shuffle then F.pixel_unshuffle, and ECA channel attention
    (a Conv1d over the pooled channels)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.eca = nn.Conv1d(1, 1, 3, padding=1, bias=False)

    def forward(self, x):
        y = F.pixel_shuffle(self.conv(x), 2)
        y = F.pixel_unshuffle(y, 2)
        s = y.mean((2, 3))
        s = self.eca(s.unsqueeze(1)).squeeze(1).sigmoid()
        return y * s[:, :, None, None]


class Video3D(nn.Module):
    """A small video / volume network: Conv3d (padding, 'same', groups,
    replicate padding), BatchNorm3d, MaxPool3d, one built from Python lists
    as MViT's (print(model) shows the lists), AvgPool3d with ceil_mode,
    trilinear Upsample, AdaptiveMaxPool3d and AdaptiveAvgPool3d."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv3d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm3d(8)
        self.pool = nn.MaxPool3d((1, 2, 2))
        self.c2 = nn.Conv3d(8, 8, (3, 3, 3), padding="same", groups=2,
                            padding_mode="replicate")
        self.skip = nn.MaxPool3d([1, 3, 3], stride=[1, 1, 1], padding=[0, 1, 1])
        self.avg = nn.AvgPool3d(2, ceil_mode=True, count_include_pad=False)
        self.up = nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
        self.amax = nn.AdaptiveMaxPool3d((1, 2, 2))
        self.gap = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8 * 4 + 8, 4)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.c1(x))))
        y = self.skip(F.relu(self.c2(x)))
        z = self.up(self.avg(y))
        return self.fc(torch.cat([self.amax(z).flatten(1), self.gap(y).flatten(1)], 1))


def _video(batch, size):
    return {"x": torch.randn(batch, 3, 4, size, size, generator=_generator(batch, size))}


class MathOps(nn.Module):
    """Element-wise math (log1p, expm1, square, atan, tan, sinh, cosh, log2,
    log10, asin), clamp_min/clamp_max, logsumexp, F.softmin, view_as and
    reshape_as, a norm clamped away from zero."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x, y):
        h = self.lin(x)
        a = torch.log1p(h.abs()) + torch.expm1(h.clamp(max=1.0)) + h.square()
        b = torch.atan(h) + torch.tan(h * 0.1) + torch.sinh(h * 0.5) - torch.cosh(h * 0.2)
        c = torch.log2(h.abs() + 1) + torch.log10(h.abs() + 1) + torch.asin(torch.tanh(h) * 0.9)
        d = h.clamp_min(0.1) + h.clamp_max(-0.1)
        e = torch.logsumexp(h, dim=-1, keepdim=True)
        f = F.softmin(h, dim=-1)
        g = h.view_as(y) + y.reshape_as(h)
        n = h / h.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        return a, b, c, d, e, f, g, n


def _xy6(batch, size):
    g = _generator(batch, size)
    return {"x": torch.randn(batch, size, 6, generator=g), "y": torch.randn(batch, size, 6, generator=g)}


class CRFScore(nn.Module):
    """The forward algorithm of a BiLSTM-CRF tagger: logsumexp over a
    transition Parameter in a Python loop over time."""

    def __init__(self, tags=4):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        self.lstm = nn.LSTM(8, 6, bidirectional=True, batch_first=True)
        self.proj = nn.Linear(12, tags)
        self.trans = nn.Parameter(torch.randn(tags, tags) * 0.1)

    def forward(self, ids):
        em = self.proj(self.lstm(self.emb(ids))[0])
        alpha = em[:, 0]
        for t in range(1, em.size(1)):
            alpha = torch.logsumexp(alpha.unsqueeze(2) + self.trans.unsqueeze(0), dim=1) + em[:, t]
        return torch.logsumexp(alpha, dim=1)


class Siamese(nn.Module):
    """A shared encoder on two inputs compared by CosineSimilarity,
    PairwiseDistance, Bilinear and their functional forms."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))
        self.cos = nn.CosineSimilarity(dim=1)
        self.pd = nn.PairwiseDistance(p=2.0, keepdim=True)
        self.bil = nn.Bilinear(8, 8, 3)

    def forward(self, a, b):
        ea, eb = self.enc(a), self.enc(b)
        return (self.cos(ea, eb), self.pd(ea, eb), self.bil(ea, eb),
                F.cosine_similarity(ea.unsqueeze(1), eb.unsqueeze(0), dim=-1),
                F.pairwise_distance(ea, eb, p=1.0))


def _pair(batch, size):
    g = _generator(batch, size)
    return {"a": torch.randn(batch + 1, 8, generator=g), "b": torch.randn(batch + 1, 8, generator=g)}


class RMSNorm(nn.Module):
    """RMSNorm as LLaMA writes it: rsqrt of the mean square."""

    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LlamaBlock(nn.Module):
    """A LLaMA-style block: RMSNorm, rotary embeddings from non-persistent
    cos/sin buffers (torch.outer in __init__), grouped-query attention with
    repeat_interleave, an einsum score, a -inf triu mask, SwiGLU."""

    def __init__(self, d=16, h=4, kv=2, t=32):
        super().__init__()
        self.h, self.kv, self.hd = h, kv, d // h
        self.norm1 = RMSNorm(d)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, kv * self.hd, bias=False)
        self.v = nn.Linear(d, kv * self.hd, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.norm2 = RMSNorm(d)
        self.gate = nn.Linear(d, 32, bias=False)
        self.up = nn.Linear(d, 32, bias=False)
        self.down = nn.Linear(32, d, bias=False)
        inv = 1.0 / (10000 ** (torch.arange(0, self.hd, 2).float() / self.hd))
        freqs = torch.outer(torch.arange(t).float(), inv)
        emb = torch.cat([freqs, freqs], -1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, x):
        B, T, D = x.shape
        y = self.norm1(x)
        q = self.q(y).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(y).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = self.v(y).view(B, T, self.kv, self.hd).transpose(1, 2)
        cos, sin = self.cos[:T], self.sin[:T]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.h // self.kv, dim=1)
        v = v.repeat_interleave(self.h // self.kv, dim=1)
        att = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(self.hd)
        mask = torch.full((T, T), float("-inf")).triu(1)
        att = F.softmax(att + mask, dim=-1)
        out = (att @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(out)
        y = self.norm2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class MoE(nn.Module):
    """A mixture of experts: topk routing, softmax over the chosen gates,
    experts stacked and gathered, the dense gate matrix by scatter."""

    def __init__(self, d=8, e=4, k=2):
        super().__init__()
        self.k = k
        self.router = nn.Linear(d, e)
        self.experts = nn.ModuleList([nn.Sequential(nn.Linear(d, 16), nn.GELU(), nn.Linear(16, d))
                                      for _ in range(e)])

    def forward(self, x):
        logits = self.router(x)
        w, idx = torch.topk(logits, self.k, dim=-1)
        w = F.softmax(w, dim=-1)
        outs = torch.stack([ex(x) for ex in self.experts], dim=-2)  # B T E D
        sel = torch.gather(outs, -2, idx.unsqueeze(-1).expand(*idx.shape, x.shape[-1]))
        dense = torch.zeros_like(logits).scatter(-1, idx, w)
        return (sel * w.unsqueeze(-1)).sum(-2), dense


class TensorIdioms(nn.Module):
    """torch.outer, scatter_ of a number, scatter_add, where against a 0-d
    tensor, new_ones, a bool tril, amax over a dim tuple, argsort
    descending."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x):
        h = self.lin(x)
        a = torch.outer(h[0, 0], h[0, 1])
        b = torch.zeros(2, h.shape[-1]).scatter_(0, torch.tensor([[0, 1, 0, 1, 0, 1]]), 1.0)
        c = torch.scatter_add(torch.zeros(3, 6), 0, torch.tensor([[2, 0, 1, 1, 0, 2]]), h[0, :1])
        d = h.masked_fill(torch.isnan(h), 0.0)
        e = torch.where(h > 0, h, torch.zeros(()))
        f = h.new_ones(h.shape[-1]) * 2
        g = torch.tril(torch.ones(h.shape[1], h.shape[1]), diagonal=-1).bool()
        return a, b, c, d, e, f * h, g, h.amax((1, 2)), h.argsort(-1, descending=True)


class STN(nn.Module):
    """The PyTorch tutorial's spatial transformer network (MNIST):
    F.affine_grid and F.grid_sample with their default align_corners, a
    localisation net, F.max_pool2d, Dropout2d and F.dropout in eval."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=7), nn.MaxPool2d(2, stride=2), nn.ReLU(True),
            nn.Conv2d(8, 10, kernel_size=5), nn.MaxPool2d(2, stride=2), nn.ReLU(True))
        self.fc_loc = nn.Sequential(nn.Linear(10 * 3 * 3, 32), nn.ReLU(True), nn.Linear(32, 3 * 2))
        # The tutorial starts at the identity transform (zero weight); a small
        # random weight makes the grid differ per input here.
        self.fc_loc[2].weight.data.normal_(0, 0.02)
        self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 10 * 3 * 3)
        theta = self.fc_loc(xs)
        theta = theta.view(-1, 2, 3)
        grid = F.affine_grid(theta, x.size())
        return F.grid_sample(x, grid)

    def forward(self, x):
        x = self.stn(x)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def _mnist(batch, size):
    return {"x": torch.randn(batch, 1, size, size, generator=_generator(batch, size))}


def _generator(batch, size):
    return torch.Generator().manual_seed(batch * 1000 + size)


def _features(d):
    """[batch, size, d] float inputs named x."""
    def make(batch, size):
        return {"x": torch.randn(batch, size, d, generator=_generator(batch, size))}
    return make


def _images4(batch, size):
    return {"x": torch.randn(batch, 4, size, size, generator=_generator(batch, size))}


def _tokens(batch, size, vocab=50):
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    return {"idx": torch.randint(0, vocab, (batch, size), generator=gen)}


def _padded_tokens(batch, size, vocab=40):
    """Ids with 0 (padding_idx) after each row's length, and the bool
    src_key_padding_mask (True = padding).  Row lengths are below @size, so
    PyTorch's nested path also cuts the sequence."""
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    ids = torch.randint(1, vocab, (batch, size), generator=gen)
    lengths = torch.randint(size // 2, size, (batch,), generator=gen)
    mask = torch.arange(size).unsqueeze(0) >= lengths.unsqueeze(1)
    return {"ids": ids.masked_fill(mask, 0), "padding_mask": mask}


def _ids(batch, size, vocab=40):
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    return {"ids": torch.randint(0, vocab, (batch, size), generator=gen)}


def _waves(batch, size):
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    return {"x": torch.randn(batch, 1, size, generator=gen)}


def _images(batch, size):
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    return {"x": torch.randn(batch, 3, size, size, generator=gen)}


def _two(batch, size):
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    return {"x": torch.randn(batch, 16, generator=gen),
            "ids": torch.randint(0, 16, (batch, 16), generator=gen)}


def _flat(batch, size):
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    return {"x": torch.randn(batch, 3, 4, size, generator=gen)}


# name -> (constructor, inputs(batch, size), sizes: [export size, other size])
MODELS = collections.OrderedDict([
    ("looped_mlp", (lambda: LoopedMLP(n=48), _flat, [4, 4])),
    ("module_dict_heads", (Heads, _images, [16, 12])),
    ("own_parameter", (ScaledConv, _images, [16, 12])),
    ("tuple_and_dict", (TupleAndDict, _images, [16, 12])),
    ("two_inputs", (TwoInputs, _two, [16, 16])),
    ("size_unpacking", (ChannelShuffle, _images, [16, 12])),
    ("list_input", (DenseStack, _images, [16, 12])),
    ("tiny_gpt", (TinyGPT, _tokens, [8, 12])),
    ("text_classifier", (TextClassifier, _padded_tokens, [12, 9])),
    ("lstm_tagger", (LSTMTagger, _ids, [10, 7])),
    ("gru_classifier", (GRUClassifier, _ids, [10, 7])),
    ("small_unet", (SmallUNet, _images, [16, 12])),
    ("audio_cnn", (AudioCNN, _waves, [400, 320])),
    # Models of the kind users write that nnkit was not built around: each
    # needed a converter, an op or a tracing rule it lacked (see
    # docs/TORCH2NN.md, "Conformance"), or covers a variant of one that did.
    ("seq2seq_transformer", (Seq2SeqTransformer, _src_tgt, [7, 5])),
    ("vit_unfold", (PatchViT, _images, [16, 16])),
    ("cross_attention", (CrossAttn, _qkv, [6, 4])),
    ("proj_lstm", (ProjLSTM, _lstm_in, [5, 3])),
    ("cell_loop", (CellLoop, _features(8), [5, 5])),
    ("seq2seq_gru", (Seq2SeqGRU, lambda b, s: _ids(b, s, 20), [6, 4])),
    ("interp_unet", (InterpUNet, _images, [16, 12])),
    ("espcn", (ESPCN, _images, [8, 6])),
    ("norm_zoo", (NormZoo, _images, [12, 12])),
    ("bag_model", (BagModel, lambda b, s: _ids(b, s, 30), [6, 4])),
    ("op_soup", (OpSoup, _features(12), [5, 4])),
    ("op_soup2", (OpSoup2, _xy, [5, 3])),
    ("act_zoo", (ActZoo, _images4, [4, 6])),
    ("shapes", (Shapes, _images, [6, 5])),
    ("tied_rnn_lm", (TiedRNNLM, _ids_keep, [6, 4])),
    ("decoder_only", (DecoderOnly, _tgt_mem, [5, 4])),
    ("ae1d", (AE1d, _wave2, [16, 12])),
    ("functional1d", (Functional1d, _f1d, [16, 12])),
    ("bert_embed", (BertEmbed, _bert, [8, 6])),
    ("nested", (Nested, _nested, [4, 3])),
    ("index_zoo", (IndexZoo, _x_idx, [5, 4])),
    ("subclasses", (Subclasses, _images, [8, 6])),
    ("splits_sizes", (SplitsAndSizes, _features(6), [4, 3])),
    ("pixel_eca", (Pixel, _images, [8, 6])),
    ("video3d", (Video3D, _video, [8, 6])),
    ("math_ops", (MathOps, _xy6, [4, 3])),
    ("crf_score", (CRFScore, lambda b, s: _ids(b, s, 30), [5, 4])),
    ("siamese", (Siamese, _pair, [1, 1])),
    ("llama_block", (LlamaBlock, _features(16), [6, 5])),
    ("moe", (MoE, _features(8), [4, 3])),
    ("tensor_idioms", (TensorIdioms, _features(6), [6, 5])),
    ("stn", (STN, _mnist, [28, 28])),
])
# The second round of models nnkit had not seen (handwritten2.py).
MODELS.update(handwritten2.MODELS)


def bench_inputs(name, batch, size, vocab):
    """Inputs of token model @name over a vocabulary of @vocab ids (for
    bench/bench_seq.py, which builds the models larger)."""
    return MODELS[name][1](batch, size, vocab)


def build(name, seed=0):
    torch.manual_seed(seed)
    ctor, inputs, sizes = MODELS[name]
    return ctor().eval(), inputs, sizes
