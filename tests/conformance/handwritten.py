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
])


def bench_inputs(name, batch, size, vocab):
    """Inputs of token model @name over a vocabulary of @vocab ids (for
    bench/bench_seq.py, which builds the models larger)."""
    return MODELS[name][1](batch, size, vocab)


def build(name, seed=0):
    torch.manual_seed(seed)
    ctor, inputs, sizes = MODELS[name]
    return ctor().eval(), inputs, sizes
