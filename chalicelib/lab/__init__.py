"""The rules lab: the event archive's layout and the pure replay of archived events under two rule sets
(backtest), written so a shard function and a merge function can run it anywhere (in-process or on AWS)."""
