-- Drawings sent to /sketch: kept (original bytes, by content hash) as candidate training data for the
-- sketch model, with who sent them and when.
CREATE TABLE uploads (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL,               -- of the original bytes
    path        TEXT NOT NULL,               -- the original bytes, relative to the data directory
    user_id     INTEGER NOT NULL REFERENCES users (id),
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    filename    TEXT NOT NULL DEFAULT '',    -- as the sender named it
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX uploads_sha256 ON uploads (sha256);

-- Pictures may be sketch results, which name their upload. SQLite cannot change a CHECK in place, so
-- the table is rebuilt with the same ids (votes keep pointing at them; see migrations/__init__.py).
CREATE TABLE pictures_new (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT NOT NULL,               -- of the file's bytes
    path          TEXT NOT NULL,               -- relative to the data directory
    kind          TEXT NOT NULL CHECK (kind IN ('face', 'grid', 'morph', 'sketch')),
    user_id       INTEGER NOT NULL REFERENCES users (id),
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    hair          INTEGER,                     -- index into HAIR_COLORS
    eye           INTEGER,                     -- index into EYE_COLORS
    seed          INTEGER,                     -- the first face's seed; faces use seed, seed+1, ...
    count         INTEGER NOT NULL DEFAULT 1,  -- faces in the picture
    tags          TEXT NOT NULL,               -- human-readable, e.g. 'pink hair blue eyes'
    model_version TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    upload_id     INTEGER REFERENCES uploads (id)  -- the drawing a 'sketch' picture was made from
);
INSERT INTO pictures_new (id, sha256, path, kind, user_id, platform, chat_id, hair, eye, seed, count, tags,
                          model_version, created_at)
    SELECT id, sha256, path, kind, user_id, platform, chat_id, hair, eye, seed, count, tags, model_version,
           created_at FROM pictures;
DROP TABLE pictures;
ALTER TABLE pictures_new RENAME TO pictures;
CREATE INDEX pictures_created ON pictures (created_at);
