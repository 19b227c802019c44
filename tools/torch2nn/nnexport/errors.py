"""The exporter's one exception type and how a failure is located."""

import os
import traceback

# Frames in these trees are the tracing machinery, not the model's code.
_MACHINERY = (
    os.path.dirname(os.path.abspath(__file__)),
    os.path.join("torch", "fx"),
    os.path.join("torch", "nn", "modules", "module.py"),
    os.path.join("torch", "overrides.py"),
    os.path.join("torch", "_tensor.py"),
)


class ExportError(Exception):
    """A model nnkit cannot express.  str() is the one-line message
    "PATH (Class): what [at file.py:LINE]"."""

    def __init__(self, what, path=None, cls=None, where=None):
        self.what = what
        self.path = path
        self.cls = cls
        self.where = where
        super().__init__(self.line())

    def line(self, root="<root>"):
        """The one-line message; @root names the model itself (the CLI
        gives the source's name)."""
        text = self.what
        if self.where:
            text += f" at {self.where}"
        if self.path is not None or self.cls is not None:
            label = self.path or root
            if self.cls:
                label += f" ({self.cls})"
            text = f"{label}: {text}"
        return text

    def located(self, path, cls, where=None):
        """This error, with its module path, class and source line filled
        in where still unknown."""
        return ExportError(self.what,
                           self.path if self.path is not None else path,
                           self.cls or cls, self.where or where)


def user_line(tb=None, stack=None):
    """"file.py:LINE" of the innermost frame of the model's own code in
    traceback @tb (or stack summary @stack), or None."""
    frames = traceback.extract_tb(tb) if tb is not None else (stack or [])
    for fr in reversed(frames):
        fname = os.path.abspath(fr.filename)
        if any(m in fname for m in _MACHINERY) or fname.startswith("<"):
            continue
        return f"{os.path.basename(fr.filename)}:{fr.lineno}"
    return None


def node_line(node):
    """"file.py:LINE" of an fx node, from its recorded stack trace."""
    st = getattr(node, "stack_trace", None)
    if not st:
        return None
    # Innermost frame first: fx walks the stack outwards from the user frame.
    for line in st.splitlines():
        line = line.strip()
        if line.startswith('File "'):
            fname = line.split('"')[1]
            if any(m in os.path.abspath(fname) for m in _MACHINERY):
                continue
            try:
                lineno = int(line.split("line ")[1].split(",")[0])
            except (IndexError, ValueError):
                continue
            return f"{os.path.basename(fname)}:{lineno}"
    return None
