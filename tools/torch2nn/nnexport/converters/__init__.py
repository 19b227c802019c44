"""Converter families: importing one registers its converters
(registry.converter / registry.op_converter).  A new family is one new
module listed here."""

from . import (activation, attention, conv, embedding, linear, misc, norm,  # noqa: F401
               pool, recurrent)
from . import arith, creation, functional, python, shape, tensor  # noqa: F401
