"""Hand-written models, second round: kinds of model the first round
(handwritten.py) did not cover, written as their users write them.
handwritten.MODELS takes these entries as hw:NAME cases too; each was
tried before nnkit was changed for it (docs/TORCH2NN.md, "Models nobody
had tried, round 2").
"""

import collections
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _gen(batch, size):
    return torch.Generator().manual_seed(batch * 1000 + size + 7)


def _images(c):
    def make(batch, size):
        return {"x": torch.randn(batch, c, size, size, generator=_gen(batch, size))}
    return make


def _seq(d):
    """[batch, size, d] features named x."""
    def make(batch, size):
        return {"x": torch.randn(batch, size, d, generator=_gen(batch, size))}
    return make


def _seq_flat(c):
    """[batch * size, c] rows named x."""
    def make(batch, size):
        return {"x": torch.randn(batch * size, c, generator=_gen(batch, size))}
    return make


def _chan_seq(c):
    """[batch, c, size] signals named x."""
    def make(batch, size):
        return {"x": torch.randn(batch, c, size, generator=_gen(batch, size))}
    return make


class SegNet(nn.Module):
    """SegNet: encoder pools keep their argmax indices, the decoder
    unpools with them (module and functional forms, output_size given)."""

    def __init__(self, classes=3):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True))
        self.enc1, self.enc2 = block(3, 8), block(8, 16)
        self.dec2, self.dec1 = block(16, 8), nn.Conv2d(8, classes, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)

    def forward(self, x):
        x = self.enc1(x)
        size1 = x.size()
        x, idx1 = self.pool(x)
        x = self.enc2(x)
        x, idx2 = F.max_pool2d(x, kernel_size=2, stride=2, return_indices=True)
        x = self.unpool(x, idx2)
        x = self.dec2(x)
        x = F.max_unpool2d(x, idx1, kernel_size=2, stride=2, output_size=size1)
        return self.dec1(x)


class TNet(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k
        self.conv = nn.Sequential(nn.Conv1d(k, 16, 1), nn.ReLU(), nn.Conv1d(16, 32, 1), nn.ReLU())
        self.fc = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, k * k))

    def forward(self, x):
        b = x.size(0)
        x = torch.max(self.conv(x), 2, keepdim=True)[0].view(-1, 32)
        iden = torch.eye(self.k, dtype=x.dtype).view(1, self.k * self.k).repeat(b, 1)
        return (self.fc(x) + iden).view(-1, self.k, self.k)


class PointNet(nn.Module):
    """PointNet classifier: T-net (bmm with an identity added), a shared
    MLP as Conv1d, max over the points."""

    def __init__(self, classes=5):
        super().__init__()
        self.stn = TNet(3)
        self.mlp = nn.Sequential(nn.Conv1d(3, 16, 1), nn.BatchNorm1d(16), nn.ReLU(),
                                 nn.Conv1d(16, 32, 1))
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        trans = self.stn(x)
        x = torch.bmm(x.transpose(2, 1), trans).transpose(2, 1)
        x = self.mlp(x)
        x, _ = x.max(dim=2)
        return F.log_softmax(self.head(x), dim=1), trans


class GraphConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.lin = nn.Linear(cin, cout)
        self.root = nn.Linear(cin, cout, bias=False)

    def forward(self, x, edge_index):
        src, dst = edge_index[0], edge_index[1]
        msg = self.lin(x)[src]
        agg = torch.zeros(x.size(0), msg.size(1), dtype=x.dtype)
        agg.index_add_(0, dst, msg)
        deg = torch.zeros(x.size(0), dtype=x.dtype).scatter_add_(0, dst, torch.ones_like(dst, dtype=x.dtype))
        return agg / deg.clamp(min=1).unsqueeze(-1) + self.root(x)


class GNN(nn.Module):
    """Message passing over an edge list: gather by source, index_add_ and
    scatter_add_ into the targets, mean aggregation, a global max pool."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([GraphConv(6, 12), GraphConv(12, 12)])
        self.out = nn.Linear(12, 3)

    def forward(self, x, edge_index):
        for conv in self.convs:
            x = F.relu(conv(x, edge_index))
        pooled = x.max(dim=0).values
        return self.out(x), pooled


def _graph(batch, size):
    g = _gen(batch, size)
    n = batch * size
    return {"x": torch.randn(n, 6, generator=g),
            "edge_index": torch.randint(0, n, (2, 3 * n), generator=g)}


class CausalConv1d(nn.Conv1d):
    def __init__(self, cin, cout, k, dilation=1):
        super().__init__(cin, cout, k, dilation=dilation)
        self.left = (k - 1) * dilation

    def forward(self, x):
        return super().forward(F.pad(x, (self.left, 0)))


class WaveNet(nn.Module):
    """WaveNet/TCN: dilated causal Conv1d (left F.pad), gated tanh *
    sigmoid, residual and summed skip connections."""

    def __init__(self, ch=8, layers=4):
        super().__init__()
        self.inp = CausalConv1d(1, ch, 2)
        self.filt = nn.ModuleList([CausalConv1d(ch, ch, 2, 2 ** i) for i in range(layers)])
        self.gate = nn.ModuleList([CausalConv1d(ch, ch, 2, 2 ** i) for i in range(layers)])
        self.res = nn.ModuleList([nn.Conv1d(ch, ch, 1) for _ in range(layers)])
        self.skip = nn.ModuleList([nn.Conv1d(ch, ch, 1) for _ in range(layers)])
        self.post = nn.Sequential(nn.ReLU(), nn.Conv1d(ch, ch, 1), nn.ReLU(), nn.Conv1d(ch, 4, 1))

    def forward(self, x):
        x = self.inp(x)
        skips = 0
        for f, g, r, s in zip(self.filt, self.gate, self.res, self.skip):
            z = torch.tanh(f(x)) * torch.sigmoid(g(x))
            skips = skips + s(z)
            x = x + r(z)
        return self.post(skips)


class ConvModule(nn.Module):
    def __init__(self, d, k=5):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.dw = nn.Conv1d(d, d, k, padding=k // 2, groups=d)
        self.bn = nn.BatchNorm1d(d)
        self.pw2 = nn.Conv1d(d, d, 1)

    def forward(self, x):
        y = self.norm(x).transpose(1, 2)
        y = F.glu(self.pw1(y), dim=1)
        y = F.silu(self.bn(self.dw(y)))
        return self.pw2(y).transpose(1, 2)


class Conformer(nn.Module):
    """A Conformer block: macaron FFN halves, self-attention, a conv module
    with GLU and a depthwise Conv1d, a final LayerNorm."""

    def __init__(self, d=16, heads=4):
        super().__init__()

        def ffn():
            return nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.SiLU(),
                                 nn.Dropout(0.1), nn.Linear(4 * d, d))
        self.ff1, self.ff2 = ffn(), ffn()
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.conv = ConvModule(d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        x = x + 0.5 * self.ff1(x)
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.conv(x)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlockT(nn.Module):
    def __init__(self, cin, cout, tdim):
        super().__init__()
        self.norm1 = nn.GroupNorm(4, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(tdim, 2 * cout))
        self.norm2 = nn.GroupNorm(4, cout, affine=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[..., None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class DiffusionBlock(nn.Module):
    """A diffusion UNet level: sinusoidal timestep embedding, time MLP,
    ResBlocks with adaptive GroupNorm (FiLM scale/shift), down and up."""

    def __init__(self, ch=8, tdim=16):
        super().__init__()
        self.tdim = tdim
        self.time = nn.Sequential(nn.Linear(tdim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inp = nn.Conv2d(3, ch, 3, padding=1)
        self.down = ResBlockT(ch, 2 * ch, tdim)
        self.pool = nn.Conv2d(2 * ch, 2 * ch, 3, stride=2, padding=1)
        self.mid = ResBlockT(2 * ch, 2 * ch, tdim)
        self.up = ResBlockT(4 * ch, ch, tdim)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, x, t):
        emb = self.time(timestep_embedding(t, self.tdim))
        h = self.inp(x)
        d = self.down(h, emb)
        m = self.mid(self.pool(d), emb)
        m = F.interpolate(m, scale_factor=2, mode="nearest")
        return self.out(self.up(torch.cat([m, d], dim=1), emb))


def _diffusion(batch, size):
    g = _gen(batch, size)
    return {"x": torch.randn(batch, 3, size, size, generator=g),
            "t": torch.randint(0, 1000, (batch,), generator=g)}


class PositionalEncoding(nn.Module):
    def __init__(self, freqs, include_input=True):
        super().__init__()
        self.freqs = freqs
        self.include_input = include_input

    def forward(self, x):
        out = [x] if self.include_input else []
        for i in range(self.freqs):
            for fn in (torch.sin, torch.cos):
                out.append(fn((2.0 ** i) * math.pi * x))
        return torch.cat(out, -1)


class NeRF(nn.Module):
    """NeRF's MLP: positional encoding of points and directions, a skip
    concatenation, density (relu) and colour (sigmoid) heads."""

    def __init__(self, w=32, depth=4, skip=2):
        super().__init__()
        self.pe_x, self.pe_d = PositionalEncoding(4), PositionalEncoding(2)
        cx, cd = 3 + 3 * 2 * 4, 3 + 3 * 2 * 2
        self.skip = skip
        self.layers = nn.ModuleList(
            [nn.Linear(cx, w)] + [nn.Linear(w + (cx if i == skip else 0), w) for i in range(1, depth)])
        self.sigma = nn.Linear(w, 1)
        self.feat = nn.Linear(w, w)
        self.rgb = nn.Sequential(nn.Linear(w + cd, w // 2), nn.ReLU(), nn.Linear(w // 2, 3))

    def forward(self, pts, dirs):
        ex = self.pe_x(pts)
        h = ex
        for i, layer in enumerate(self.layers):
            if i == self.skip:
                h = torch.cat([ex, h], -1)
            h = F.relu(layer(h))
        sigma = F.relu(self.sigma(h))
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        rgb = torch.sigmoid(self.rgb(torch.cat([self.feat(h), self.pe_d(dirs)], -1)))
        return torch.cat([rgb, sigma], -1)


def _rays(batch, size):
    g = _gen(batch, size)
    return {"pts": torch.randn(batch, size, 3, generator=g),
            "dirs": torch.randn(batch, size, 3, generator=g)}


class VAE(nn.Module):
    """A convolutional VAE: mu and logvar heads, reparameterisation only in
    training (eval decodes mu), the KL term returned too."""

    def __init__(self, z=8):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(8, 16, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())
        self.mu = nn.Linear(16 * 4 * 4, z)
        self.logvar = nn.Linear(16 * 4 * 4, z)
        self.dec_in = nn.Linear(z, 16 * 4 * 4)
        self.dec = nn.Sequential(nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Sigmoid())

    def reparameterize(self, mu, logvar):
        if self.training:
            std = torch.exp(0.5 * logvar)
            return mu + torch.randn_like(std) * std
        return mu

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = self.reparameterize(mu, logvar)
        recon = self.dec(self.dec_in(z).view(-1, 16, 4, 4))
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
        return recon, kl


class CLIP(nn.Module):
    """A CLIP-like dual encoder: normalised embeddings, a learned
    logit_scale Parameter used as logit_scale.exp(), logits both ways."""

    def __init__(self, d=16, vocab=30):
        super().__init__()
        self.visual = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.GELU(), nn.AdaptiveAvgPool2d(1),
                                    nn.Flatten(), nn.Linear(8, d))
        self.tok = nn.Embedding(vocab, d)
        self.text = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, 2, 32, batch_first=True, norm_first=True), 1)
        self.text_proj = nn.Parameter(torch.randn(d, d) * d ** -0.5)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))

    def encode_text(self, ids):
        x = self.text(self.tok(ids))
        # the end-of-text token is the largest id, as CLIP's tokenizer puts it
        x = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
        return x @ self.text_proj

    def forward(self, image, ids):
        img = self.visual(image)
        txt = self.encode_text(ids)
        img = img / img.norm(dim=1, keepdim=True)
        txt = F.normalize(txt, dim=-1)
        scale = self.logit_scale.exp()
        logits_per_image = scale * img @ txt.t()
        return logits_per_image, logits_per_image.t()


def _clip(batch, size):
    g = _gen(batch, size)
    return {"image": torch.randn(batch, 3, 8, 8, generator=g),
            "ids": torch.randint(0, 30, (batch, size), generator=g)}


class YOLOHead(nn.Module):
    """A YOLOv5-style detect head: view/permute of anchors, sigmoid, a grid
    from torch.meshgrid, anchors as a buffer, the boxes decoded and cat."""

    def __init__(self, nc=3, ch=(8, 16), strides=(8, 16)):
        super().__init__()
        self.no = nc + 5
        self.na = 2
        self.strides = strides
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self.register_buffer("anchors", torch.tensor([[10., 13., 16., 30.], [30., 61., 62., 45.]]).view(2, 2, 2))

    def _make_grid(self, nx, ny, i):
        yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(1, self.na, ny, nx, 2).float()
        anchor_grid = self.anchors[i].view(1, self.na, 1, 1, 2).expand(1, self.na, ny, nx, 2)
        return grid, anchor_grid

    def forward(self, p3, p4):
        z = []
        for i, x in enumerate([p3, p4]):
            x = self.m[i](x)
            bs, _, ny, nx = x.shape
            x = x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            grid, anchor_grid = self._make_grid(nx, ny, i)
            y = x.sigmoid()
            xy = (y[..., 0:2] * 2 - 0.5 + grid) * self.strides[i]
            wh = (y[..., 2:4] * 2) ** 2 * anchor_grid
            y = torch.cat((xy, wh, y[..., 4:]), -1)
            z.append(y.view(bs, -1, self.no))
        return torch.cat(z, 1)


def _yolo(batch, size):
    g = _gen(batch, size)
    return {"p3": torch.randn(batch, 8, size, size, generator=g),
            "p4": torch.randn(batch, 16, size // 2, size // 2, generator=g)}


class SELayer(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, c // r, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(c // r, c, bias=False), nn.Sigmoid())

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        return x * self.fc(y).view(b, c, 1, 1).expand_as(x)


class CBAM(nn.Module):
    def __init__(self, c, r=4, k=7):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(c, c // r, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(c // r, c, 1, bias=False))
        self.spatial = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        ca = torch.sigmoid(self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1)))
        x = x * ca
        s = torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True)[0]], dim=1)
        return x * torch.sigmoid(self.spatial(s))


class SEBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride=1, attn="se"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.attn = SELayer(cout) if attn == "se" else CBAM(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.attn(self.bn2(self.conv2(out)))
        return F.relu(out + residual)


class SECBAMNet(nn.Module):
    """SE-ResNet and CBAM basic blocks (channel attention from avg and max
    pools, spatial attention over the channel mean and max)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layers = nn.Sequential(SEBasicBlock(8, 8), SEBasicBlock(8, 16, 2, attn="cbam"))
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


class MaskedConv2d(nn.Conv2d):
    def __init__(self, mask_type, *args, **kwargs):
        super().__init__(*args, **kwargs)
        assert mask_type in ("A", "B")
        self.register_buffer("mask", self.weight.data.clone().fill_(1))
        _, _, kh, kw = self.weight.size()
        self.mask[:, :, kh // 2, kw // 2 + (mask_type == "B"):] = 0
        self.mask[:, :, kh // 2 + 1:] = 0

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


class PixelCNN(nn.Module):
    """PixelCNN: masked convolutions (type A then B), the mask a buffer
    multiplied into the weight for F.conv2d."""

    def __init__(self, ch=8):
        super().__init__()
        self.net = nn.Sequential(
            MaskedConv2d("A", 1, ch, 5, padding=2), nn.BatchNorm2d(ch), nn.ReLU(True),
            MaskedConv2d("B", ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU(True),
            nn.Conv2d(ch, 16, 1))

    def forward(self, x):
        return self.net(x)


def squash(s, dim=-1):
    n2 = (s ** 2).sum(dim=dim, keepdim=True)
    return n2 / (1 + n2) * s / torch.sqrt(n2 + 1e-8)


class CapsNet(nn.Module):
    """A capsule network: primary capsules squashed, routing by agreement
    for three iterations (softmax over the routes, weighted sum, squash)."""

    def __init__(self, iters=3):
        super().__init__()
        self.iters = iters
        self.conv = nn.Conv2d(1, 16, 3)
        self.primary = nn.Conv2d(16, 4 * 8, 3, stride=2)
        self.routes = 8 * 2 * 2
        self.W = nn.Parameter(0.1 * torch.randn(1, self.routes, 5, 8, 4))

    def forward(self, x):
        x = F.relu(self.conv(x))
        u = self.primary(x)
        b = u.size(0)
        u = u.view(b, 4, 8, -1).permute(0, 2, 3, 1).reshape(b, -1, 4)
        u = squash(u)
        u = u[:, :, None, :, None]
        u_hat = torch.matmul(self.W, u).squeeze(-1)
        logits = torch.zeros(b, self.routes, 5, 1)
        for i in range(self.iters):
            c = F.softmax(logits, dim=2)
            v = squash((c * u_hat).sum(dim=1, keepdim=True))
            if i < self.iters - 1:
                logits = logits + (u_hat * v).sum(dim=-1, keepdim=True)
        v = v.squeeze(1)
        return v.norm(dim=-1)


class ODEFunc(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d + 1, 16), nn.Tanh(), nn.Linear(16, d))

    def forward(self, t, y):
        tt = torch.ones_like(y[:, :1]) * t
        return self.net(torch.cat([tt, y], 1))


class NeuralODE(nn.Module):
    """A fixed-step RK4 neural ODE: the time a Python float in the loop."""

    def __init__(self, d=6, steps=4, t1=1.0):
        super().__init__()
        self.func = ODEFunc(d)
        self.steps, self.t1 = steps, t1

    def forward(self, x):
        h = self.t1 / self.steps
        y, t = x, 0.0
        for _ in range(self.steps):
            k1 = self.func(t, y)
            k2 = self.func(t + h / 2, y + h / 2 * k1)
            k3 = self.func(t + h / 2, y + h / 2 * k2)
            k4 = self.func(t + h, y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            t += h
        return y


def _ode(batch, size):
    return {"x": torch.randn(batch * size, 6, generator=_gen(batch, size))}


class T5Attention(nn.Module):
    """T5 self-attention with its relative position bias: buckets from
    torch.log, torch.min, torch.where and .long(), an Embedding of the
    buckets permuted into the scores."""

    def __init__(self, d=16, heads=2, buckets=8, max_distance=16, bidirectional=True):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.buckets, self.max_distance, self.bidirectional = buckets, max_distance, bidirectional
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.relative_attention_bias = nn.Embedding(buckets, heads)

    @staticmethod
    def _relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
        relative_buckets = 0
        if bidirectional:
            num_buckets //= 2
            relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
            relative_position = torch.abs(relative_position)
        else:
            relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
        max_exact = num_buckets // 2
        is_small = relative_position < max_exact
        large = max_exact + (
            torch.log(relative_position.float() / max_exact)
            / math.log(max_distance / max_exact) * (num_buckets - max_exact)).to(torch.long)
        large = torch.min(large, torch.full_like(large, num_buckets - 1))
        relative_buckets += torch.where(is_small, relative_position, large)
        return relative_buckets

    def compute_bias(self, q_len, k_len):
        context = torch.arange(q_len, dtype=torch.long)[:, None]
        memory = torch.arange(k_len, dtype=torch.long)[None, :]
        bucket = self._relative_position_bucket(memory - context, self.bidirectional,
                                                self.buckets, self.max_distance)
        return self.relative_attention_bias(bucket).permute([2, 0, 1]).unsqueeze(0)

    def forward(self, x):
        b, n, _ = x.shape

        def shape(t):
            return t.view(b, -1, self.h, self.dk).transpose(1, 2)
        q, k, v = shape(self.q(x)), shape(self.k(x)), shape(self.v(x))
        scores = torch.matmul(q, k.transpose(3, 2)) + self.compute_bias(n, n)
        w = F.softmax(scores.float(), dim=-1).type_as(scores)
        out = torch.matmul(w, v).transpose(1, 2).contiguous().view(b, -1, self.h * self.dk)
        return self.o(out)


class BertSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dense = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=1e-12)

    def transpose_for_scores(self, x):
        new_shape = x.size()[:-1] + (self.heads, self.head_dim)
        return x.view(new_shape).permute(0, 2, 1, 3)

    def forward(self, hidden, mask):
        q = self.transpose_for_scores(self.query(hidden))
        k = self.transpose_for_scores(self.key(hidden))
        v = self.transpose_for_scores(self.value(hidden))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        probs = nn.functional.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        ctx = ctx.view(ctx.size()[:-2] + (self.heads * self.head_dim,))
        return self.norm(self.dense(ctx) + hidden)


class HandBert(nn.Module):
    """BERT written out: word, position and token_type embeddings, the
    extended attention mask (1.0 - mask) * -10000.0, a tanh pooler."""

    def __init__(self, vocab=40, d=16, heads=2, layers=2, max_pos=32):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, d, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_pos, d)
        self.token_type_embeddings = nn.Embedding(2, d)
        self.emb_norm = nn.LayerNorm(d, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(max_pos).expand((1, -1)))
        self.attn = nn.ModuleList([BertSelfAttention(d, heads) for _ in range(layers)])
        self.ffn = nn.ModuleList([nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
                                  for _ in range(layers)])
        self.ffn_norm = nn.ModuleList([nn.LayerNorm(d, eps=1e-12) for _ in range(layers)])
        self.pooler = nn.Linear(d, d)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        n = input_ids.size(1)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        pos = self.position_ids[:, :n]
        h = self.word_embeddings(input_ids) + self.position_embeddings(pos) \
            + self.token_type_embeddings(token_type_ids)
        h = self.emb_norm(h)
        ext = attention_mask[:, None, None, :].to(dtype=h.dtype)
        ext = (1.0 - ext) * -10000.0
        for attn, ffn, norm in zip(self.attn, self.ffn, self.ffn_norm):
            h = attn(h, ext)
            h = norm(h + ffn(h))
        pooled = torch.tanh(self.pooler(h[:, 0]))
        return h, pooled


def _bert(batch, size):
    g = _gen(batch, size)
    ids = torch.randint(1, 40, (batch, size), generator=g)
    lengths = torch.randint(size // 2, size + 1, (batch,), generator=g)
    mask = (torch.arange(size)[None, :] < lengths[:, None]).long()
    types = (torch.arange(size)[None, :] >= (lengths[:, None] // 2)).long().expand(batch, size).contiguous()
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": types}


class SelectiveSSM(nn.Module):
    """A Mamba-like block: in-projection split into x and gate, a causal
    depthwise Conv1d cut to length, input-dependent delta (softplus), B, C,
    A = -exp(A_log), and a selective scan as a Python loop over time."""

    def __init__(self, d=8, state=4, expand=2, k=3):
        super().__init__()
        di = d * expand
        self.state = state
        self.in_proj = nn.Linear(d, 2 * di)
        self.conv1d = nn.Conv1d(di, di, k, groups=di, padding=k - 1)
        self.x_proj = nn.Linear(di, 1 + 2 * state, bias=False)
        self.dt_proj = nn.Linear(1, di)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state + 1, dtype=torch.float32)).repeat(di, 1))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d)

    def ssm(self, x):
        A = -torch.exp(self.A_log.float())
        dbc = self.x_proj(x)
        delta, B, C = dbc.split(split_size=[1, self.state, self.state], dim=-1)
        delta = F.softplus(self.dt_proj(delta))
        b, n, di = x.shape
        h = torch.zeros(b, di, self.state)
        ys = []
        for t in range(n):
            dA = torch.exp(delta[:, t].unsqueeze(-1) * A)
            dBx = delta[:, t].unsqueeze(-1) * B[:, t].unsqueeze(1) * x[:, t].unsqueeze(-1)
            h = dA * h + dBx
            ys.append((h @ C[:, t].unsqueeze(-1)).squeeze(-1))
        return torch.stack(ys, dim=1) + x * self.D

    def forward(self, x):
        n = x.shape[1]
        xz = self.in_proj(x)
        x, z = xz.chunk(2, dim=-1)
        x = self.conv1d(x.transpose(1, 2))[:, :, :n].transpose(1, 2)
        y = self.ssm(F.silu(x)) * F.silu(z)
        return self.out_proj(y)


class FoldModel(nn.Module):
    """Overlapping patches: F.unfold, a per-patch Linear, nn.Fold back and
    the overlap count from folding ones (an averaging overlap-add)."""

    def __init__(self, size=8, k=4, stride=2):
        super().__init__()
        self.k, self.stride, self.size = k, stride, size
        self.proj = nn.Linear(3 * k * k, 3 * k * k)
        self.fold = nn.Fold(output_size=(size, size), kernel_size=k, stride=stride)

    def forward(self, x):
        patches = F.unfold(x, kernel_size=self.k, stride=self.stride)
        patches = self.proj(patches.transpose(1, 2)).transpose(1, 2)
        out = self.fold(patches)
        count = F.fold(torch.ones_like(patches), (self.size, self.size), self.k, stride=self.stride)
        return out / count


class OpSoup3(nn.Module):
    """nan_to_num, diag and diag_embed, cummax and cummin, a linspace with
    a computed step count, addcmul and lerp, as user code reaches for them."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.register_buffer("avg", torch.randn(6))

    def forward(self, x):
        h = self.lin(x)
        r = torch.log(h)  # NaN where h < 0
        r = torch.nan_to_num(r, nan=0.0, neginf=-5.0)
        r2 = (h / (h > 0).float()).nan_to_num(posinf=3.0)
        d = torch.diag_embed(h[:, 0])
        w = torch.diag(self.lin.weight)
        cm = torch.cummax(h, dim=1)
        cn = h.cummin(dim=-1).values
        steps = x.shape[1] * 2
        ramp = torch.linspace(0, 1, steps)[: x.shape[1]]
        ema = torch.lerp(h, self.avg, 0.25)
        ac = torch.addcmul(h, h, h, value=0.5)
        return r, r2, d, w, cm.values, cm.indices, cn, h * ramp[:, None], ema, ac


class ConvLSTMCell(nn.Module):
    def __init__(self, cin, hidden, k=3):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(cin + hidden, 4 * hidden, k, padding=k // 2)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def init_hidden(self, b, hw):
        return (torch.zeros(b, self.hidden, *hw), torch.zeros(b, self.hidden, *hw))


class ConvLSTM(nn.Module):
    """ConvLSTM over a [b, t, c, h, w] clip: gates by torch.split of one
    convolution, zero states from the input's spatial size."""

    def __init__(self):
        super().__init__()
        self.cell = ConvLSTMCell(2, 4)

    def forward(self, x):
        b, t, _, hh, ww = x.size()
        h, c = self.cell.init_hidden(b, (hh, ww))
        outs = []
        for step in range(t):
            h, c = self.cell(x[:, step], (h, c))
            outs.append(h)
        return torch.stack(outs, dim=1), c


def _clip5(batch, size):
    return {"x": torch.randn(batch, 3, 2, size, size, generator=_gen(batch, size))}


def calc_mean_std(feat, eps=1e-5):
    n, c = feat.size()[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return var.sqrt().view(n, c, 1, 1), feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1)


class AdaIN(nn.Module):
    """Style transfer with AdaIN: content/style statistics from var and
    mean, reflection padding, nearest upsampling in the decoder."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 8, 3), nn.ReLU(),
                                 nn.MaxPool2d(2, ceil_mode=True), nn.ReflectionPad2d(1), nn.Conv2d(8, 16, 3),
                                 nn.ReLU())
        self.dec = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(16, 8, 3), nn.ReLU(),
                                 nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.ReflectionPad2d(1), nn.Conv2d(8, 3, 3))

    def forward(self, content, style, alpha: float = 0.8):
        fc, fs = self.enc(content), self.enc(style)
        s_std, s_mean = calc_mean_std(fs)
        c_std, c_mean = calc_mean_std(fc)
        t = (fc - c_mean.expand(fc.size())) / c_std.expand(fc.size()) * s_std.expand(fc.size()) \
            + s_mean.expand(fc.size())
        t = alpha * t + (1 - alpha) * fc
        return self.dec(t)


def _content_style(batch, size):
    g = _gen(batch, size)
    return {"content": torch.randn(batch, 3, size, size, generator=g),
            "style": torch.randn(batch, 3, size, size, generator=g)}


class VQ(nn.Module):
    """A VQ-VAE quantiser: squared distances to a codebook, argmin, the
    codes looked up, a straight-through estimator, torch.cdist too."""

    def __init__(self, codes=12, d=4):
        super().__init__()
        self.enc = nn.Conv2d(3, d, 3, padding=1)
        self.codebook = nn.Embedding(codes, d)
        self.codebook.weight.data.uniform_(-1.0 / codes, 1.0 / codes)
        self.dec = nn.Conv2d(d, 3, 3, padding=1)

    def forward(self, x):
        z = self.enc(x).permute(0, 2, 3, 1).contiguous()
        flat = z.view(-1, z.shape[-1])
        dist = (flat ** 2).sum(1, keepdim=True) + (self.codebook.weight ** 2).sum(1) \
            - 2 * torch.matmul(flat, self.codebook.weight.t())
        idx = torch.argmin(dist, dim=1)
        q = self.codebook(idx).view(z.shape)
        loss = F.mse_loss(q.detach(), z) * 0.25 + F.mse_loss(q, z.detach())
        q = z + (q - z).detach()
        d2 = torch.cdist(flat, self.codebook.weight)
        return self.dec(q.permute(0, 3, 1, 2)), loss, idx.view(z.shape[:-1]), d2.min(dim=1).values


class MixerBlock(nn.Module):
    def __init__(self, tokens, d):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.token_mix = nn.Sequential(nn.Linear(tokens, 2 * tokens), nn.GELU(), nn.Linear(2 * tokens, tokens))
        self.channel_mix = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        x = x + self.token_mix(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mix(self.norm2(x))


class MLPMixer(nn.Module):
    """MLP-Mixer: a strided Conv2d stem, flatten(2).transpose, token and
    channel MLPs, a mean over tokens."""

    def __init__(self, size=8, patch=2, d=16, depth=2):
        super().__init__()
        tokens = (size // patch) ** 2
        self.stem = nn.Conv2d(3, d, patch, patch)
        self.blocks = nn.Sequential(*[MixerBlock(tokens, d) for _ in range(depth)])
        self.head = nn.Linear(d, 4)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        return self.head(self.blocks(x).mean(dim=1))


class PadZoo(nn.Module):
    """Padding and normalisation layers of older models: ZeroPad2d,
    ConstantPad1d, ReplicationPad2d, LocalResponseNorm (AlexNet's),
    ChannelShuffle, AlphaDropout in eval, Hardshrink/Tanhshrink."""

    def __init__(self):
        super().__init__()
        self.zp = nn.ZeroPad2d((1, 2, 0, 1))
        self.rp = nn.ReplicationPad2d(1)
        self.cp = nn.ConstantPad1d(2, 0.5)
        self.conv = nn.Conv2d(4, 8, 3)
        self.lrn = nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=2.0)
        self.shuffle = nn.ChannelShuffle(2)
        self.drop = nn.AlphaDropout(0.2)
        self.shrink = nn.Hardshrink(0.3)

    def forward(self, x):
        y = self.conv(self.rp(self.zp(x)))
        y = self.drop(self.shuffle(self.lrn(F.relu(y))))
        return self.shrink(y), self.cp(y.flatten(2))


class DeepSets(nn.Module):
    """Set Transformer's pooling by multihead attention (a learned seed as
    the query, expanded over the batch) after a DeepSets phi, rho on the
    pooled and summed set."""

    def __init__(self, d=16):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(3, d), nn.ReLU(), nn.Linear(d, d))
        self.seed = nn.Parameter(torch.randn(1, 2, d))
        self.mha = nn.MultiheadAttention(d, 2, batch_first=True)
        self.rho = nn.Linear(3 * d, 2)

    def forward(self, x):
        h = self.phi(x)
        pooled, _ = self.mha(self.seed.expand(x.size(0), -1, -1), h, h)
        return self.rho(torch.cat([pooled.flatten(1), h.sum(dim=1)], dim=-1))


class DLRM(nn.Module):
    """DLRM: bottom MLP on dense features, embedding tables for sparse ids,
    pairwise dot interactions by bmm, the strict lower triangle taken with
    torch.tril_indices, a top MLP."""

    def __init__(self, d=8, tables=(20, 30, 10)):
        super().__init__()
        self.bot = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, d), nn.ReLU())
        self.embs = nn.ModuleList(nn.EmbeddingBag(n, d, mode="sum") for n in tables)
        n = len(tables) + 1
        self.top = nn.Sequential(nn.Linear(d + n * (n - 1) // 2, 16), nn.ReLU(), nn.Linear(16, 1))

    def interact(self, x, ly):
        b, d = x.shape
        t = torch.cat([x] + ly, dim=1).view(b, -1, d)
        z = torch.bmm(t, torch.transpose(t, 1, 2))
        _, ni, nj = z.shape
        li, lj = torch.tril_indices(ni, nj, offset=-1)
        return torch.cat([x, z[:, li, lj]], dim=1)

    def forward(self, dense, sparse):
        x = self.bot(dense)
        ly = [emb(sparse[:, i]) for i, emb in enumerate(self.embs)]
        return torch.sigmoid(self.top(self.interact(x, ly)))


def _dlrm(batch, size):
    g = _gen(batch, size)
    return {"dense": torch.randn(batch, 4, generator=g),
            "sparse": torch.randint(0, 10, (batch, 3, size), generator=g)}


class Res2Block(nn.Module):
    def __init__(self, c, scale=4, dilation=2):
        super().__init__()
        self.scale, w = scale, c // scale
        self.convs = nn.ModuleList(nn.Conv1d(w, w, 3, padding=dilation, dilation=dilation)
                                   for _ in range(scale - 1))
        self.bns = nn.ModuleList(nn.BatchNorm1d(w) for _ in range(scale - 1))

    def forward(self, x):
        chunks = torch.chunk(x, self.scale, dim=1)
        out, y = [chunks[0]], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            y = chunks[i + 1] if y is None else y + chunks[i + 1]
            y = bn(F.relu(conv(y)))
            out.append(y)
        return torch.cat(out, dim=1)


class ECAPA(nn.Module):
    """A speaker-embedding network after ECAPA-TDNN: Res2Net split blocks
    over Conv1d, an SE gate, attentive statistics pooling (softmax over
    time, weighted mean and std with a clamp), a BatchNorm1d'd embedding."""

    def __init__(self, mels=8, c=16, emb=6):
        super().__init__()
        self.inp = nn.Conv1d(mels, c, 5, padding=2)
        self.res2 = Res2Block(c)
        self.se = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Conv1d(c, 4, 1), nn.ReLU(),
                                nn.Conv1d(4, c, 1), nn.Sigmoid())
        self.att = nn.Sequential(nn.Conv1d(3 * c, 8, 1), nn.Tanh(), nn.Conv1d(8, c, 1))
        self.bn = nn.BatchNorm1d(2 * c)
        self.fc = nn.Linear(2 * c, emb)

    def forward(self, x):
        h = F.relu(self.inp(x))
        h = self.res2(h)
        h = h * self.se(h)
        t = h.size(-1)
        mean = h.mean(dim=2, keepdim=True).repeat(1, 1, t)
        std = torch.sqrt(h.var(dim=2, keepdim=True).clamp(min=1e-5)).repeat(1, 1, t)
        w = F.softmax(self.att(torch.cat([h, mean, std], dim=1)), dim=2)
        mu = torch.sum(h * w, dim=2)
        sg = torch.sqrt((torch.sum((h ** 2) * w, dim=2) - mu ** 2).clamp(min=1e-5))
        return self.fc(self.bn(torch.cat([mu, sg], dim=1)))


class Coupling(nn.Module):
    def __init__(self, d, mask):
        super().__init__()
        self.register_buffer("mask", mask)
        self.s = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, d))
        self.t = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, d))

    def forward(self, x):
        xm = x * self.mask
        s = self.s(xm) * (1 - self.mask)
        t = self.t(xm) * (1 - self.mask)
        y = xm + (1 - self.mask) * (x * torch.exp(s) + t)
        return y, s.sum(dim=1)


class RealNVP(nn.Module):
    """RealNVP: affine couplings with alternating checkerboard masks (one
    flipped with torch.flip), the log-determinant summed over layers and
    the Gaussian log-likelihood of the result."""

    def __init__(self, d=6, layers=4):
        super().__init__()
        base = (torch.arange(d) % 2).float()
        self.flows = nn.ModuleList(Coupling(d, base if i % 2 == 0 else torch.flip(base, [0]))
                                   for i in range(layers))

    def forward(self, x):
        logdet = torch.zeros(x.size(0))
        for flow in self.flows:
            x, ld = flow(x)
            logdet = logdet + ld
        logp = -0.5 * (x ** 2).sum(dim=1) - 0.5 * x.size(1) * math.log(2 * math.pi)
        return x, logp + logdet


class Tabular(nn.Module):
    """A tabular model: numeric features binned by torch.bucketize against
    boundaries buffers (and searchsorted), per-column embeddings in a
    ModuleList, a MLP."""

    def __init__(self, cols=3, bins=5, d=4):
        super().__init__()
        self.register_buffer("bounds", torch.linspace(-1.5, 1.5, bins - 1))
        self.embs = nn.ModuleList(nn.Embedding(bins, d) for _ in range(cols))
        self.mlp = nn.Sequential(nn.Linear(cols * d + cols, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x):
        ids = torch.bucketize(x, self.bounds)
        right = torch.searchsorted(self.bounds, x.contiguous(), right=True)
        feats = [emb(ids[:, i]) for i, emb in enumerate(self.embs)]
        return self.mlp(torch.cat(feats + [(right - ids).float()], dim=1))


class Perceiver(nn.Module):
    """Perceiver: a learned latent array repeated over the batch
    cross-attends to the inputs (kdim/vdim), then self-attends."""

    def __init__(self, latents=4, d=16, din=6):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(latents, d))
        self.cross = nn.MultiheadAttention(d, 2, kdim=din, vdim=din, batch_first=True)
        self.self_attn = nn.TransformerEncoderLayer(d, 2, 32, batch_first=True)
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        lat = self.latents.unsqueeze(0).repeat(x.shape[0], 1, 1)
        lat = lat + self.cross(lat, x, x, need_weights=False)[0]
        return self.head(self.self_attn(lat).mean(dim=1))


# name -> (constructor, inputs(batch, size), sizes: [export size, other size])
MODELS = collections.OrderedDict([
    ("segnet", (SegNet, _images(3), [8, 12])),
    ("pointnet", (PointNet, _chan_seq(3), [16, 12])),
    ("gnn", (GNN, _graph, [5, 4])),
    ("wavenet", (WaveNet, _chan_seq(1), [20, 16])),
    ("conformer", (Conformer, _seq(16), [6, 5])),
    ("diffusion_block", (DiffusionBlock, _diffusion, [8, 6])),
    ("nerf", (NeRF, _rays, [5, 4])),
    ("vae", (VAE, _images(1), [16, 16])),
    ("clip", (CLIP, _clip, [6, 5])),
    ("yolo_head", (YOLOHead, _yolo, [8, 4])),
    ("se_cbam", (SECBAMNet, _images(3), [8, 6])),
    ("pixelcnn", (PixelCNN, _images(1), [8, 6])),
    ("capsnet", (CapsNet, _images(1), [7, 7])),
    ("neural_ode", (NeuralODE, _ode, [3, 2])),
    ("t5_relpos", (T5Attention, _seq(16), [6, 9])),
    ("hand_bert", (HandBert, _bert, [7, 5])),
    ("mamba_scan", (SelectiveSSM, _seq(8), [5, 4])),
    ("fold", (FoldModel, _images(3), [8, 8])),
    ("op_soup3", (OpSoup3, _seq(6), [4, 3])),
    ("conv_lstm", (ConvLSTM, _clip5, [6, 5])),
    ("adain", (AdaIN, _content_style, [8, 6])),
    ("vq", (VQ, _images(3), [6, 5])),
    ("mlp_mixer", (MLPMixer, _images(3), [8, 8])),
    ("pad_zoo", (PadZoo, _images(4), [6, 5])),
    ("deep_sets", (DeepSets, _seq(3), [6, 4])),
    ("dlrm", (DLRM, _dlrm, [4, 3])),
    ("ecapa", (ECAPA, _chan_seq(8), [12, 10])),
    ("real_nvp", (RealNVP, _ode, [3, 2])),
    ("tabular", (Tabular, _seq_flat(3), [2, 3])),
    ("perceiver", (Perceiver, _seq(6), [7, 5])),
])
