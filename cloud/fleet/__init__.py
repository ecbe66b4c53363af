"""Fleet provisioning: the fleet CA, box enrollment, bundles, revocation, the broker's config.

The fleet side (``init``, ``enroll``, ``service``, ``revoke``, ``mosquitto-conf``) works on a
fleet directory holding the CA key; the box side (``csr``, ``apply``) works on a box's data
directory. Everything is files on disk; private keys are written with mode 0600.
"""
