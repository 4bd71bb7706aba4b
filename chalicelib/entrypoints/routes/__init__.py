"""HTTP routes grouped by audience, as Chalice blueprints registered by app.py."""
