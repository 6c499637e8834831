"""Reference ("oracle") calculators: the registry of specs (:mod:`.registry`: ``sw-si``, ``ma-tio2``,
``pedone``, ``tblite``, ``gpaw``, ``chgnet``, ``sevennet``, ``empirical``, a model file, ``module:factory``) and the factories
behind the names (:mod:`.lammps`, :mod:`.external`, :mod:`.universal`, :mod:`.empirical`)."""

from xtalnn.calculators.registry import CalculatorFactory, make_calculator, names, register

__all__ = ["CalculatorFactory", "make_calculator", "names", "register"]
