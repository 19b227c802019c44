"""What nnkit's plugins provide, as `nnctl plugins --json` reports it:
layer types, op names and aliases, config schemas and call signatures.
The exporter checks every type, op and config it writes against it, so an
export nnkit cannot load fails here, naming the op.  Without nnctl (the
Python API used alone) nothing is checked and names are written as the
converters give them."""

import json
import os
import shutil
import subprocess

from .errors import ExportError


def find_nnctl(explicit=None):
    """@explicit, $NNCTL, a build tree beside this checkout, or PATH."""
    if explicit:
        return explicit
    if os.environ.get("NNCTL"):
        return os.environ["NNCTL"]
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, "..", "..", ".."))
    for build in ("build", "builddir"):
        cand = os.path.join(root, build, "tools", "nnctl", "nnctl")
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which("nnctl")


def _names_of(entry):
    if isinstance(entry, str):
        return entry, [], None, None
    name = entry.get("name")
    aliases = entry.get("aliases") or []
    sig = entry.get("signature", entry.get("args"))
    schema = entry.get("schema", entry.get("config"))
    return name, aliases, sig, schema


def _param_names(sig):
    """Parameter names of a signature as nnctl reports it: a list of names
    or of {"name": ...} objects, or a "(a, b=1)" string."""
    if sig is None:
        return None
    if isinstance(sig, str):
        inner = sig.strip().strip("()")
        names = []
        for part in inner.split(","):
            part = part.strip().split("=")[0].split(":")[0].strip().lstrip("*")
            if part and part != "/":
                names.append(part)
        return names
    if isinstance(sig, list):
        return [p if isinstance(p, str) else p.get("name") for p in sig]
    if isinstance(sig, dict) and "params" in sig:
        return _param_names(sig["params"])
    return None


def _schema_keys(schema):
    if schema is None:
        return None
    if isinstance(schema, dict):
        return list(schema)
    if isinstance(schema, list):
        return [k if isinstance(k, str) else k.get("name") for k in schema]
    return None


class Plugins:
    """The loaded listing; Plugins.unchecked() checks nothing."""

    def __init__(self, listing=None, source=None):
        self.source = source
        self.checked = listing is not None
        # Op names are checked only when the listing reports aliases or
        # signatures: a bare list of type names knows no functional names.
        self.checks_ops = False
        self.canonical = {}    # name or alias -> canonical type name
        self.signatures = {}   # canonical name -> parameter names, or None
        self.schemas = {}      # canonical name -> config keys, or None
        self.variadic = set()  # canonical names taking *args or **kwargs
        # canonical name -> [(parameter, dtypes any provider accepts, or
        # None for any)], for tensor arguments, when the listing says.
        self.arg_dtypes = {}
        for plugin in (listing or {}).get("plugins", []):
            for entry in plugin.get("types", []):
                name, aliases, sig, schema = _names_of(entry)
                if not isinstance(entry, str):
                    self.checks_ops = True
                if not name:
                    continue
                self._add_dtypes(name, sig)
                for n in [name] + list(aliases):
                    self.canonical.setdefault(n, name)
                self.signatures[name] = _param_names(sig)
                self.schemas[name] = _schema_keys(schema)
                if isinstance(sig, list) and any(
                        isinstance(a, dict) and (a.get("variadic") or a.get("var_keyword"))
                        for a in sig):
                    self.variadic.add(name)
        # nnctl's full listing: "types" with aliases, call signatures
        # ("args") and config schemas ("keys"), and an alias table.
        for entry in (listing or {}).get("types", []) or []:
            if not isinstance(entry, dict) or not entry.get("type"):
                continue
            name = entry["type"]
            self.checks_ops = True
            for n in [name] + list(entry.get("aliases") or []):
                self.canonical.setdefault(n, name)
            args = entry.get("args")
            self._add_dtypes(name, args)
            if isinstance(args, list):
                self.signatures[name] = [a.get("name") for a in args if isinstance(a, dict)]
                if any(a.get("variadic") or a.get("var_keyword") for a in args
                       if isinstance(a, dict)):
                    self.variadic.add(name)
            keys = entry.get("keys")
            if isinstance(keys, list):
                self.schemas[name] = [k.get("name") for k in keys if isinstance(k, dict)]
        aliases = (listing or {}).get("aliases")
        if isinstance(aliases, dict):
            for alias, target in aliases.items():
                if isinstance(target, str):
                    self.canonical.setdefault(alias, target)

    def _add_dtypes(self, name, sig):
        """Records the tensor dtypes each parameter of @sig accepts, merged
        over the providers of @name (a call runs when one accepts it)."""
        if not isinstance(sig, list) or not all(isinstance(a, dict) for a in sig):
            return
        new = [(a.get("name"), set(a["dtypes"]) if isinstance(a.get("dtypes"), list) and
                "Tensor" in (a.get("kinds") or []) else None) for a in sig]
        old = self.arg_dtypes.get(name)
        if old is None or [p for p, _ in old] != [p for p, _ in new]:
            self.arg_dtypes[name] = new
            return
        self.arg_dtypes[name] = [(p, None if a is None or b is None else a | b)
                                 for (p, a), (_, b) in zip(old, new)]

    def check_tensor_dtypes(self, type_name, args, kwargs, dtype_name):
        """Raises ExportError when a tensor of the recorded call (@args,
        @kwargs) has a dtype that nnkit's @type_name does not take (a
        float64 model on a float32-only layer), rather than failing when
        nnkit runs it.  @dtype_name maps a torch dtype to nnkit's name."""
        if not self.checked:
            return
        params = self.arg_dtypes.get(self.canonical.get(type_name, type_name))
        if not params:
            return
        bound = list(zip(params, args)) + [(p, kwargs[p[0]]) for p in params
                                           if p[0] in kwargs]
        for (param, accepted), value in bound:
            # Tensors only (a nested tensor, PyTorch's fast path between
            # encoder layers, has a dtype but no sizes).
            dtype = getattr(value, "dtype", None) if accepted is not None else None
            if dtype is None or isinstance(value, (int, float, bool)):
                continue
            found = dtype_name(dtype)
            if found not in accepted:
                hint = " (export the model in float32: model.float())" \
                    if found in ("F64", "F16", "BF16") else ""
                raise ExportError(f"nnkit's {type_name} takes '{param}' as "
                                  f"{' or '.join(sorted(accepted))}, the example run "
                                  f"passes {found}{hint}")

    @classmethod
    def unchecked(cls):
        return cls(None)

    @classmethod
    def from_nnctl(cls, nnctl):
        try:
            proc = subprocess.run([nnctl, "plugins", "--json"], capture_output=True,
                                  text=True, timeout=120)
        except OSError as e:
            raise ExportError(f"cannot run {nnctl} to list nnkit's plugins: {e.strerror}")
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise ExportError(f"{nnctl} plugins --json failed: {msg}")
        try:
            listing = json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            raise ExportError(f"{nnctl} plugins --json printed no JSON: {e}")
        return cls(listing, nnctl)

    def has(self, name):
        return not self.checked or name in self.canonical

    def resolve_op(self, names, what):
        """The first of @names nnkit knows (an op name or alias)."""
        if not self.checks_ops:
            return names[0]
        for n in names:
            if n in self.canonical:
                return n
        raise ExportError(f"unsupported op {what}: nnkit's plugins have no op "
                          + " / ".join(dict.fromkeys(names)))

    def check_type(self, type_name, config):
        """Raises ExportError when nnkit has no layer type @type_name or
        @config has keys its schema does not know."""
        if not self.checked:
            return
        if type_name not in self.canonical:
            raise ExportError(f"layer type {type_name} is not provided by nnkit's plugins")
        keys = self.schemas.get(self.canonical[type_name])
        if keys is not None and config:
            unknown = [k for k in config if k not in keys]
            if unknown:
                raise ExportError(f"{type_name} config key '{unknown[0]}' is unknown to "
                                  f"nnkit's {type_name} (knows: {', '.join(keys)})")

    def check_call(self, op, entry, config):
        """Checks an op node's keyword names against the op's signature."""
        if not self.checks_ops:
            return
        canon = self.canonical.get(op, op)
        if config is not None:
            self.check_type(canon, config)
        params = self.signatures.get(canon)
        if params is None or canon in self.variadic:
            return
        unknown = [k for k in entry.get("kwargs", {}) if k not in params]
        if unknown:
            raise ExportError(f"op {op}: keyword '{unknown[0]}' is not in its nnkit "
                              f"signature ({', '.join(params)})")
        if len(entry.get("args", [])) > len(params):
            raise ExportError(f"op {op}: {len(entry['args'])} positional arguments, "
                              f"its nnkit signature takes {len(params)}")

