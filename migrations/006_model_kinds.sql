-- Model kinds: the registry holds the face generator, the sketch model and the 2x upscaler side by side,
-- one active version per kind (generator/model_kinds.py names the kinds; no CHECK, so a new kind needs no
-- migration). Every promotion and rollback is logged: which version, by whom, why. The active-model pointer
-- file that generator services follow is derived from the newest promotion of each kind.
ALTER TABLE models ADD COLUMN kind TEXT NOT NULL DEFAULT 'face';
CREATE INDEX models_kind_state ON models (kind, state);

CREATE TABLE promotions (
    id      INTEGER PRIMARY KEY,
    kind    TEXT NOT NULL,
    version TEXT NOT NULL REFERENCES models (version),
    path    TEXT NOT NULL,                     -- the weights promoted (a kept copy in <data_dir>/models)
    actor   TEXT NOT NULL,                     -- 'moebot models promote', 'web:dashboard', 'telegram:123', ...
    reason  TEXT NOT NULL,
    at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX promotions_kind ON promotions (kind, id);
