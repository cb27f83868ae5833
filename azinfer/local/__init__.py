"""azinfer on this machine: the ARM emulator, the daemon ``azinfer up --local`` runs it in, a tiny stand-in model.

Nothing here is imported by ``import azinfer``: it needs the ``local`` extra
(``pip install 'azinfer[local]'``: the emulator's TLS, the Azure SDK clients,
and the serving stack the container runs with). See ``docs/local.md``.
"""
