-- The training set: every face image once, by content, with its tags (or none).
CREATE TABLE images (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE,          -- of the stored 64x64 RGB pixels
    path        TEXT NOT NULL,                 -- relative to the data directory
    hair        INTEGER,                       -- index into HAIR_COLORS; NULL when untagged
    eye         INTEGER,                       -- index into EYE_COLORS; NULL when untagged
    source      TEXT NOT NULL,                 -- where it came from, e.g. 'import:anime-faces-64'
    source_name TEXT,                          -- the original file name within that source
    status      TEXT NOT NULL DEFAULT 'base'
                CHECK (status IN ('base', 'pending', 'curated', 'rejected')),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((hair IS NULL) = (eye IS NULL))
);
CREATE INDEX images_status ON images (status);

-- Which files of a source an import has already handled (kept or skipped), so a rerun resumes.
CREATE TABLE import_log (
    source      TEXT NOT NULL,
    source_name TEXT NOT NULL,
    outcome     TEXT NOT NULL,                 -- 'added', 'duplicate' or 'skipped: <reason>'
    image_id    INTEGER REFERENCES images (id),
    PRIMARY KEY (source, source_name)
);
