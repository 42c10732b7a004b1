-- Curation and the model registry: submissions and voted-up pictures become training data, every change
-- of an item's state is logged (who, when, why), and every trained model is recorded with its data,
-- metrics and state. Tables whose CHECK changes are rebuilt with the same ids (see migrations/__init__.py).

-- The local web playground is a platform too.
CREATE TABLE users_new (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL CHECK (platform IN ('telegram', 'discord', 'web')),
    external_id TEXT NOT NULL,                 -- the platform's user id, as text
    name        TEXT NOT NULL DEFAULT '',      -- display name when last seen
    first_seen  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (platform, external_id)
);
INSERT INTO users_new (id, platform, external_id, name, first_seen)
    SELECT id, platform, external_id, name, first_seen FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- A submission is shown in chat as a picture, so it is voted on with the same buttons.
CREATE TABLE pictures_new (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT NOT NULL,               -- of the file's bytes
    path          TEXT NOT NULL,               -- relative to the data directory
    kind          TEXT NOT NULL CHECK (kind IN ('face', 'grid', 'morph', 'sketch', 'submission')),
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
                          model_version, created_at, upload_id)
    SELECT id, sha256, path, kind, user_id, platform, chat_id, hair, eye, seed, count, tags, model_version,
           created_at, upload_id FROM pictures;
DROP TABLE pictures;
ALTER TABLE pictures_new RENAME TO pictures;
CREATE INDEX pictures_created ON pictures (created_at);

-- A training face may come from chat: the picture that carries its votes, and who submitted it.
ALTER TABLE images ADD COLUMN picture_id INTEGER REFERENCES pictures (id);
ALTER TABLE images ADD COLUMN user_id INTEGER REFERENCES users (id);
CREATE INDEX images_picture ON images (picture_id);
CREATE INDEX images_user ON images (user_id);

-- Every change of a training item's state or tags; nothing changes silently.
CREATE TABLE curation_log (
    id          INTEGER PRIMARY KEY,
    image_id    INTEGER,                       -- no foreign key: the log outlives a forgotten item
    picture_id  INTEGER,
    old_status  TEXT,                          -- NULL when the item entered
    new_status  TEXT NOT NULL,                 -- an images.status, or 'forgotten'
    hair        INTEGER,                       -- the tags after the change
    eye         INTEGER,
    actor       TEXT NOT NULL,                 -- 'votes', 'telegram:123' (an admin or the submitter), 'forget'
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX curation_log_image ON curation_log (image_id);

-- The model registry: every generator the retrainer made (and the ones it started from).
CREATE TABLE models (
    id             INTEGER PRIMARY KEY,
    version        TEXT NOT NULL UNIQUE,
    parent         TEXT,                       -- the version it was fine-tuned from
    path           TEXT,                       -- its weights file; NULL until a run exports one
    state          TEXT NOT NULL
                   CHECK (state IN ('training', 'candidate', 'active', 'rejected', 'retired', 'failed')),
    base_max_id    INTEGER,                    -- trained on the base faces with images.id <= this (train split)
    metrics        TEXT,                       -- JSON: the gate's figures for this model
    parent_metrics TEXT,                       -- JSON: the parent's figures on the same faces and latents
    grid           TEXT,                       -- before/after sample grid (PNG path)
    run_dir        TEXT,
    reason         TEXT NOT NULL DEFAULT '',   -- why it is in its state
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX models_state ON models (state);

-- Exactly which curated faces a model was trained on (beside the base faces up to base_max_id).
CREATE TABLE model_data (
    model_id    INTEGER NOT NULL REFERENCES models (id),
    image_id    INTEGER NOT NULL,              -- no foreign key: /forget may remove the face later
    PRIMARY KEY (model_id, image_id)
);
