"""chalice local's stand-in for API Gateway, answering unknown paths as the deployed API does.

On AWS, API Gateway answers a path no route serves itself; infra/resources.yaml turns its 403 "Missing
Authentication Token" into the documented 404 error body. chalice's LocalGateway (behind `chalice local` and
chalice.test.Client) answers the raw 403 before the app runs, and chalice has no catch-all route that works
locally (aws/chalice#2012 is unmerged), so the local stack (`make run`) and the tests apply this instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def answer_unknown_routes() -> None:
    """Make chalice's LocalGateway answer a path no route serves with the documented 404 (idempotent)."""
    from chalice.local import LocalGateway, RouteMatcher

    if getattr(LocalGateway.handle_request, "_leadloop_documented", False):
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from chalicelib.entrypoints.http import no_route

    original = LocalGateway.handle_request

    def handle_request(self: Any, method: str, path: str, headers: Any, body: Any) -> Any:
        try:
            RouteMatcher(list(self._app_object.routes)).match_route(path)
        except ValueError:
            return no_route(path).to_dict()
        return original(self, method, path, headers, body)

    handle_request._leadloop_documented = True  # type: ignore[attr-defined]
    LocalGateway.handle_request = handle_request  # type: ignore[method-assign]


def serve_chalice_local(argv: list[str]) -> int:
    """`chalice local <argv>`, with unknown paths answered as on AWS."""
    from chalice import cli

    answer_unknown_routes()
    sys.argv = ["chalice", "local", *argv]
    return int(cli.main() or 0)
