-- What every bot process on this database shares, so that limits and locks hold across processes and machines:
-- the drawing limits (bot/limits.py) and named leases (bot/store/leases.py: a scheduled job runs in one process,
-- one submission at a time is checked for near-duplicates).
CREATE TABLE limit_users (
    user_key    TEXT PRIMARY KEY,              -- 'telegram:123'
    last_at     REAL NOT NULL                  -- their last drawing command, seconds since the epoch
);
CREATE TABLE limit_chat_turns (
    id          INTEGER PRIMARY KEY,
    chat_key    TEXT NOT NULL,
    at          REAL NOT NULL                  -- a drawing command in the chat, seconds since the epoch
);
CREATE INDEX limit_chat_turns_chat ON limit_chat_turns (chat_key, at);
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,              -- e.g. 'job:moebot-retrain'
    holder      TEXT NOT NULL,                 -- 'host:pid:random' of the process that holds it
    expires_at  REAL NOT NULL                  -- seconds since the epoch; free after this
);
