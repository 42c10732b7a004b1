-- Faces at more than one resolution: the 64 px tagged set and the 128 px untagged set live side by side.
-- A 128 px face's colours are read by the evaluation classifier; tag_confidence says how sure it was
-- (NULL: the tags came from a tag file or a person). Training decides by a threshold which readings to trust.
ALTER TABLE images ADD COLUMN size INTEGER NOT NULL DEFAULT 64,
    ADD COLUMN tag_confidence DOUBLE PRECISION;
CREATE INDEX images_size ON images (size);
