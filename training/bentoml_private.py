"""The project's one door to BentoML's private API (``bentoml._internal``), for what 1.4 has no public name for.

- ``ModelStore``: a model store at a path of our choosing. BentoML's public ``bentoml.models.create/get`` use the
  store it resolves once per process from ``BENTOML_HOME``, which would pin a process to the first ``AOI_HOME`` it
  saw; they take another store only through their ``_model_store`` argument, an instance of this class.
- ``CorkDispatcher``: the adaptive batching behind ``@bentoml.api(batchable=True)``. The public way to reach it is
  a self-call through BentoML's HTTP stack (``serving/batching.py`` says why that is too slow); the dispatcher
  itself is not exported.

``tests/serving/test_bentoml_private.py`` fails when a BentoML upgrade moves or changes what is used here.
"""

from __future__ import annotations

from bentoml._internal.marshal.dispatcher import CorkDispatcher
from bentoml._internal.models import ModelStore

__all__ = ["CorkDispatcher", "ModelStore"]
