"""Leadloop's console: server-rendered pages under /console for sales (and, later, marketing), over the same
use cases as the JSON API. routes.py holds the Chalice routes, sessions.py the signed session cookie and its
CSRF token, views.py what each page shows, pages.py rendering and the security headers."""
