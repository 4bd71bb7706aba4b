"""Use cases: load through a repository protocol (`ports`), decide in the domain, store the decision with
its effects. One module per family: leads, nurture, marketing, scoreboard, intake, auth."""
