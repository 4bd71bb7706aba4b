"""Deployable AWS resources for Leadloop: the merge template, the state machine definitions, and the code
that turns Chalice's output into the template of one stage (`infra.stage_template`)."""
