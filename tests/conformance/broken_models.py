"""Models the exporter must refuse, each with one clear line (used by
test_exporter.py; in their own module so that torch.save'd copies load in
the CLI's process)."""

import torch
import torch.nn as nn


class DataDependent(nn.Module):
    """Branches on a tensor's values, as NMS-style post-processing does."""

    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


class UnknownOp(nn.Module):
    """Calls an op no converter knows."""

    def forward(self, x):
        return torch.special.erfcx(x)
