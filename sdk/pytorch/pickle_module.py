"""CloudPickle shaped for `torch.save(..., pickle_module=...)`, as `mlflow.pytorch.pickle_module`.

torch uses the module's `Pickler` and `Unpickler`; cloudpickle's `Pickler` is the plain
one, so `CloudPickler` is exported under that name (it pickles classes defined in
`__main__` by value). The files it writes hold no reference to this module, so MLflow
reads them with its own copy and we read MLflow's with this one.
"""

from pickle import Unpickler

from cloudpickle import CloudPickler as Pickler
from cloudpickle import dump, dumps, load, loads

__all__ = ["Pickler", "Unpickler", "dump", "dumps", "load", "loads"]
