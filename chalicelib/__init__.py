"""Leadloop: a serverless lead-nurture orchestrator (see README.md)."""
