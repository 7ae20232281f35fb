"""The read-only web view: Syncs, Repositories, KeyRings and each Secret's audit timeline.

Why a layer of its own: it is a face, like the CLI and the operator, and it reads through
``cluster/`` with whatever identity it is given (the user's kubeconfig for ``sealed-gitops ui``,
so it never shows more than ``kubectl get`` would), and through ``audit/`` for the timelines. It
never shows a secret value, a length or a hash of one. Only the CLI imports it
(``.importlinter``); aiohttp and Jinja2 load only when a server starts.

Modules: ``guard`` (only GET, Host check, security headers), ``reads`` (API reads and pure row
builders), ``timeline`` (a Secret's audit trail and the live-versus-Git comparison), ``views``
(handlers and templates), ``server`` (foreground and threaded runners).
"""

from __future__ import annotations

from sealed_gitops.ui.server import UiThread, serve
from sealed_gitops.ui.timeline import Comparer
from sealed_gitops.ui.views import UiSettings, make_app

__all__ = ["Comparer", "UiSettings", "UiThread", "make_app", "serve"]
