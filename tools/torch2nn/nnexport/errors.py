"""The exporter's one exception type."""


class ExportError(Exception):
    """A model nnkit cannot express.  The message names the module path and
    the PyTorch op, module type or argument that is not supported."""
