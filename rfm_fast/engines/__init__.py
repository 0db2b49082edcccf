"""Scoring across partitions: the partition engine (:mod:`~rfm_fast.engines.distributed`) and
the two integrations that run it, :mod:`~rfm_fast.engines.spark` and
:mod:`~rfm_fast.engines.dask`.

The engine depends on :mod:`rfm_fast.core` only; each integration needs its extra
(``pip install 'rfm_fast[spark]'`` or ``'rfm_fast[dask]'``) and is imported on its own:
``import rfm_fast.engines.spark``.
"""
