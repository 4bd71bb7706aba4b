"""The pure domain: events, prospects, scoring, lifecycle, messaging. No AWS, no clock, no environment."""
