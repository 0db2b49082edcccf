"""The commands of ``rfm``, a module each (``state``: the group of ``rfm state ...``); each is a
few lines over the library, registered by :mod:`rfm_fast_cli.main`."""
