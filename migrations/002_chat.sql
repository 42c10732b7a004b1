-- The chat bot: who asked, what was drawn, and the votes on it.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL CHECK (platform IN ('telegram', 'discord')),
    external_id TEXT NOT NULL,                 -- the platform's user id, as text
    name        TEXT NOT NULL DEFAULT '',      -- display name when last seen
    first_seen  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (platform, external_id)
);

-- One row per picture sent to a chat; two requests that drew the same pixels share the file.
CREATE TABLE pictures (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT NOT NULL,               -- of the file's bytes
    path          TEXT NOT NULL,               -- relative to the data directory
    kind          TEXT NOT NULL CHECK (kind IN ('face', 'grid', 'morph')),
    user_id       INTEGER NOT NULL REFERENCES users (id),
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    hair          INTEGER,                     -- index into HAIR_COLORS
    eye           INTEGER,                     -- index into EYE_COLORS
    seed          INTEGER,                     -- the first face's seed; faces use seed, seed+1, ...
    count         INTEGER NOT NULL DEFAULT 1,  -- faces in the picture
    tags          TEXT NOT NULL,               -- human-readable, e.g. 'pink hair blue eyes'
    model_version TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX pictures_created ON pictures (created_at);

-- One vote per user per picture; withdrawing deletes the row.
CREATE TABLE votes (
    picture_id  INTEGER NOT NULL REFERENCES pictures (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    value       INTEGER NOT NULL CHECK (value IN (-1, 1)),
    voted_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (picture_id, user_id)
);
