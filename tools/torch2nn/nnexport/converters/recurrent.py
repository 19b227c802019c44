"""RNN, LSTM, GRU and their cells."""

import torch.nn as nn

from ..registry import converter, refuse

# A PackedSequence's batch sizes per step come from the lengths' values.
refuse(nn.utils.rnn.pack_padded_sequence, nn.utils.rnn.pack_sequence,
       why="a packed sequence's layout (batch size per step) depends on the lengths' "
           "values, which a fixed graph cannot express; run the RNN on the padded batch "
           "and take each row's last valid step with gather (or mask the padding)")


def _rnn(m):
    return {"input_size": m.input_size, "hidden_size": m.hidden_size,
            "num_layers": m.num_layers, "bias": m.bias, "batch_first": m.batch_first,
            "dropout": float(m.dropout), "bidirectional": m.bidirectional}


@converter(nn.LSTM)
def lstm(m):
    config = _rnn(m)
    config["proj_size"] = m.proj_size
    return config


@converter(nn.GRU)
def gru(m):
    return _rnn(m)


@converter(nn.RNN)
def rnn(m):
    config = _rnn(m)
    config["nonlinearity"] = m.nonlinearity
    return config


def _cell(m):
    return {"input_size": m.input_size, "hidden_size": m.hidden_size, "bias": m.bias}


@converter(nn.RNNCell)
def rnn_cell(m):
    config = _cell(m)
    config["nonlinearity"] = m.nonlinearity
    return config


@converter(nn.LSTMCell)
@converter(nn.GRUCell)
def gated_cell(m):
    return _cell(m)
