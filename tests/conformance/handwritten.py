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
    """A GPT block as people write it: size() unpacking, split, view and
    transpose, a causal mask buffer, masked_fill, math.sqrt of a size."""

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


class TinyGPT(nn.Module):
    """Token and position embeddings, blocks in a ModuleList, weight tying."""

    def __init__(self, vocab=50, c=32, t=16):
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.wpe = nn.Embedding(t, c)
        self.h = nn.ModuleList([CausalSelfAttention(c, 4, t) for _ in range(2)])
        self.ln_f = nn.LayerNorm(c)
        self.lm_head = nn.Linear(c, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = x + block(x)
        return self.lm_head(self.ln_f(x))


def _tokens(batch, size):
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    return {"idx": torch.randint(0, 50, (batch, size), generator=gen)}


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
])


def build(name, seed=0):
    torch.manual_seed(seed)
    ctor, inputs, sizes = MODELS[name]
    return ctor().eval(), inputs, sizes
