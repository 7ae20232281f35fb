"""The peers of sealed-gitops, built from their Go modules and run as local processes.

Flux's source-controller and kustomize-controller and Bitnami's Sealed Secrets controller and
``kubeseal`` run next to our operator against the real control plane (:mod:`..control_plane`), out
of cluster, as their developers run them locally: the interoperability tests (tests/peers/) and the
benchmarks compare the systems on the same API server and the same repository.
"""
