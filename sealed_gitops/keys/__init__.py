"""The keyring: key providers (local files, Kubernetes Secrets, Vault) and rotation.

Where things are, for callers (the CLI, the pipeline, the operator):

* ``keys.discovery``: :func:`discover_keyring` (sops' environment variables and default files,
  plus explicit identity files, GNUPGHOME and Vault token) and :func:`keyring_from_secret_data`
  (a Flux-style decryption Secret) build a :class:`keys.keyring.KeyRing`, the one
  ``Unwrapper`` the SOPS engine is given. It caches unwrapped data keys and counts real provider
  operations per kind and result (``KeyRing.operations``) for metrics.
* ``keys.recipients``: recipient strings and ``.sops.yaml`` creation rules to ``MasterKey`` lists
  (:func:`master_keys`, :func:`key_groups_from_rule`, :class:`KeyFactory`).
* Providers, independent of each other: ``keys.pgp`` (gpg), ``keys.vault`` (Vault/OpenBao
  transit), ``keys.age_identities`` (adapter to ``crypto.age``), ``keys.sops_binary`` (the real
  sops for cloud KMS files, stdin/stdout only).
* ``keys.sealing``: the sealing private keys for SealedSecrets.

Nothing in this package is imported here on purpose: importing ``sealed_gitops.keys`` must not
start gpg or import hvac.
"""
