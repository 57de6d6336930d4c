-- Streams fed by the built-in demo (SPEC §7), so that they are never mistaken for real data.
ALTER TABLE streams ADD COLUMN demo BOOLEAN NOT NULL DEFAULT false;
