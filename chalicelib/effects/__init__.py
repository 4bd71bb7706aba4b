"""Effects: what a prospect write decided must happen beyond the write itself (the activity feed, scoreboard
counters, the sales notification, the SLA workflow). `outbox` plans and stores them with the write that
decided them; `dispatch` performs them at least once, idempotently, one handler per effect."""
