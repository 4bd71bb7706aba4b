"""The templates nurture chooses among (the catalogue in force), and how a template that failed to render
is told on the profile and the feed."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.adapters.templates import ParsedTemplate
from chalicelib.errors import LeadloopError, NotFound


class TemplateCatalogue:
    """The templates in force: shipped defaults, overridden by saved versions (see the marketing API)."""

    def __init__(self, load: Callable[[], dict[str, ParsedTemplate]]) -> None:
        self._load = load

    def all(self) -> dict[str, ParsedTemplate]:
        return self._load()

    def get(self, name: str) -> ParsedTemplate:
        templates = self._load()
        if name not in templates:
            raise NotFound(f"no template named {name!r}; known: {', '.join(sorted(templates))}")
        return templates[name]


def render_failure(template: str, error: LeadloopError) -> str:
    """Why a render failed, for the profile and the feed: the template and line, never the message (it may
    quote the prospect's data)."""
    line = error.details.get("line") if isinstance(error.details, dict) else None
    where = f"{template}, line {line}" if line else template
    return f"the template did not render ({where}: {error.code})"
