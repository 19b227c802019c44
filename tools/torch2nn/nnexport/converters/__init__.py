"""Converter families: importing one registers its converters
(registry.converter / registry.op_converter).  A new family is one new
module listed here."""

from . import (activation, attention, conv, detection, embedding, linear,  # noqa: F401
               misc, norm, pool, recurrent)
from . import arith, creation, functional, python, shape, tensor  # noqa: F401
