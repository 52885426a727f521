CREATE TABLE extension_my_ext_tags (
    tag_id     BIGSERIAL PRIMARY KEY,
    machine_id TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX extension_my_ext_tags_machine ON extension_my_ext_tags (machine_id);
