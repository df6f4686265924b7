/**
 * Every SQL statement of the PostgreSQL state backend, and its migrations, in one place.
 * Migrations are numbered and applied in order, each in its own transaction, by the first
 * server to start (others wait on an advisory lock); `schema_migrations` records which ran.
 * A database holding a migration newer than this build knows is refused (an older server must
 * not write to a schema it does not understand).
 */

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'recordings, possession, dock pins, custody chain with head, mentions, receipts and checkpoints',
    sql: `
      CREATE TABLE recordings (
        dock_id text NOT NULL,
        recording_id text NOT NULL,
        -- The record as JSON text, exactly as written (signed documents are never re-serialised by the database).
        record text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (dock_id, recording_id)
      );
      CREATE INDEX recordings_updated_at ON recordings (updated_at);
      CREATE TABLE possession (dock_id text NOT NULL, sha256 char(64) NOT NULL, PRIMARY KEY (dock_id, sha256));
      CREATE TABLE dock_keys (dock_id text PRIMARY KEY, public_key_pem text NOT NULL, pinned_at timestamptz NOT NULL DEFAULT clock_timestamp());
      -- The chain head: one row, locked FOR UPDATE by every append, so the chain is serialised across servers.
      CREATE TABLE custody_head (
        id int PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash char(64) NOT NULL,
        -- Bytes of the log as JSON lines (each line and its newline): the checkpoints' offset.
        bytes bigint NOT NULL
      );
      INSERT INTO custody_head (id, seq, hash, bytes) VALUES (1, 0, repeat('0', 64), 0);
      CREATE TABLE custody_entries (seq bigint PRIMARY KEY CHECK (seq > 0), line text NOT NULL, hash char(64) NOT NULL);
      CREATE TABLE custody_mentions (event text NOT NULL, subject text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (event, subject));
      CREATE TABLE custody_receipts (dock_id text NOT NULL, recording_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (dock_id, recording_id));
      CREATE TABLE custody_checkpoints (seq bigint PRIMARY KEY, checkpoint text NOT NULL, exported_at timestamptz);
      CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
      -- Append-only at the database level too: an UPDATE or DELETE of an entry or checkpoint fails
      -- (a superuser can drop the trigger: the database administrator is inside the trust boundary).
      CREATE FUNCTION custody_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the custody log is append-only (% on %)', TG_OP, TG_TABLE_NAME; END $$;
      CREATE TRIGGER custody_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON custody_entries
        FOR EACH STATEMENT EXECUTE FUNCTION custody_append_only();
      CREATE TRIGGER custody_checkpoints_keep BEFORE DELETE OR TRUNCATE ON custody_checkpoints
        FOR EACH STATEMENT EXECUTE FUNCTION custody_append_only();
    `,
  },
  {
    version: 2,
    description: 'dock tokens (SHA-256 only) shared by every server, with a generation that moves on each import',
    sql: `
      CREATE TABLE dock_tokens (dock_id text PRIMARY KEY, token_sha256 char(64) NOT NULL UNIQUE);
      CREATE TABLE dock_tokens_state (
        id int PRIMARY KEY CHECK (id = 1),
        generation bigint NOT NULL,
        -- SHA-256 over the sorted (dock id, token digest) pairs: a server compares its --tokens file with it.
        table_sha256 char(64),
        imported_at timestamptz,
        imported_by text
      );
      INSERT INTO dock_tokens_state (id, generation) VALUES (1, 0);
    `,
  },
  {
    version: 3,
    description: 'custody_about: which entries are about which recording or blob (the console\'s custody timeline without a scan of the chain)',
    sql: `
      -- subject: 'rec:<dock id>/<recording id>' for every entry, and 'blob:<sha256>' too for segment-stored.
      CREATE TABLE custody_about (subject text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (subject, seq));
      INSERT INTO custody_about (subject, seq)
        SELECT 'rec:' || (line::jsonb ->> 'dockId') || '/' || (line::jsonb ->> 'recordingId'), seq FROM custody_entries
        UNION ALL
        SELECT 'blob:' || (line::jsonb ->> 'sha256'), seq FROM custody_entries WHERE line::jsonb ->> 'event' = 'segment-stored'
        ON CONFLICT DO NOTHING;
    `,
  },
  {
    version: 4,
    description: 'possession_expected: the hashes each receiving recording needs (a completion keeps the rows another recording of the dock still needs)',
    sql: `
      CREATE TABLE possession_expected (dock_id text NOT NULL, sha256 char(64) NOT NULL, recording_id text NOT NULL, PRIMARY KEY (dock_id, sha256, recording_id));
      CREATE INDEX possession_expected_by_recording ON possession_expected (dock_id, recording_id);
    `,
  },
];

export const SQL = {
  // ---- migrations
  migrationLock: 'SELECT pg_advisory_lock(7261945301)',
  migrationUnlock: 'SELECT pg_advisory_unlock(7261945301)',
  migrationsTable: 'CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
  migrationsApplied: 'SELECT version FROM schema_migrations ORDER BY version',
  migrationsPresent: "SELECT to_regclass('schema_migrations')::text AS t",
  migrationRecord: 'INSERT INTO schema_migrations (version, description) VALUES ($1, $2)',

  // ---- server meta (the key id every server must share)
  metaInsert: 'INSERT INTO server_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING',
  metaGet: 'SELECT value FROM server_meta WHERE key = $1',

  // ---- recordings
  recordingGet: 'SELECT record FROM recordings WHERE dock_id = $1 AND recording_id = $2',
  recordingCreate: 'INSERT INTO recordings (dock_id, recording_id, record) VALUES ($1, $2, $3) ON CONFLICT (dock_id, recording_id) DO NOTHING',
  recordingUpdate: 'UPDATE recordings SET record = $3, updated_at = clock_timestamp() WHERE dock_id = $1 AND recording_id = $2',
  recordingIds: 'SELECT recording_id FROM recordings WHERE dock_id = $1 ORDER BY recording_id COLLATE "C"',
  recordingKeys: 'SELECT dock_id, recording_id FROM recordings ORDER BY dock_id COLLATE "C", recording_id COLLATE "C"',
  recordingKeysSince: 'SELECT dock_id, recording_id FROM recordings WHERE updated_at >= $1 ORDER BY dock_id COLLATE "C", recording_id COLLATE "C"',

  // ---- possession
  possessionHas: 'SELECT 1 FROM possession WHERE dock_id = $1 AND sha256 = $2',
  possessionAdd: 'INSERT INTO possession (dock_id, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING',
  possessionExpect: 'INSERT INTO possession_expected (dock_id, sha256, recording_id) SELECT $1, s, $2 FROM unnest($3::text[]) AS s ON CONFLICT DO NOTHING',
  // One statement: the recording's expectations go, and the held rows nobody else expects (the
  // CTE's delete is not visible to the outer statement, hence the recording's own rows are excluded by id).
  possessionForget: `WITH done AS (DELETE FROM possession_expected WHERE dock_id = $1 AND recording_id = $2)
    DELETE FROM possession p WHERE p.dock_id = $1 AND p.sha256 = ANY($3::text[])
      AND NOT EXISTS (SELECT 1 FROM possession_expected e WHERE e.dock_id = $1 AND e.sha256 = p.sha256 AND e.recording_id <> $2)`,
  possessionCount: 'SELECT count(*) AS n FROM possession',

  // ---- dock key pins
  pinGet: 'SELECT public_key_pem FROM dock_keys WHERE dock_id = $1',
  pinInsert: 'INSERT INTO dock_keys (dock_id, public_key_pem) VALUES ($1, $2) ON CONFLICT (dock_id) DO NOTHING',
  pinDelete: 'DELETE FROM dock_keys WHERE dock_id = $1',

  // ---- dock tokens (digests only)
  tokensStateLock: 'SELECT generation, table_sha256 FROM dock_tokens_state WHERE id = 1 FOR UPDATE',
  tokensState: 'SELECT generation, table_sha256, imported_at, imported_by FROM dock_tokens_state WHERE id = 1',
  tokensClear: 'DELETE FROM dock_tokens',
  tokensInsert: 'INSERT INTO dock_tokens (dock_id, token_sha256) SELECT * FROM unnest($1::text[], $2::text[])',
  tokensAll: 'SELECT dock_id, token_sha256 FROM dock_tokens ORDER BY dock_id COLLATE "C"',
  tokensStateMove: 'UPDATE dock_tokens_state SET generation = generation + 1, table_sha256 = $1, imported_at = clock_timestamp(), imported_by = $2 WHERE id = 1 RETURNING generation',

  // ---- recording locks (session advisory locks on a connection of their own)
  lockTake: 'SELECT pg_advisory_lock(hashtextextended($1, 0))',
  lockRelease: 'SELECT pg_advisory_unlock(hashtextextended($1, 0))',

  // ---- custody chain
  headLock: 'SELECT seq, hash, bytes FROM custody_head WHERE id = 1 FOR UPDATE',
  headRead: 'SELECT seq, hash, bytes FROM custody_head WHERE id = 1',
  headMove: 'UPDATE custody_head SET seq = $1, hash = $2, bytes = $3 WHERE id = 1',
  mentionsAmong: 'SELECT event, subject FROM custody_mentions WHERE (event, subject) IN (SELECT * FROM unnest($1::text[], $2::text[]))',
  receiptsAmong: 'SELECT dock_id, recording_id FROM custody_receipts WHERE (dock_id, recording_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))',
  entriesInsert: 'INSERT INTO custody_entries (seq, line, hash) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])',
  mentionsInsert: 'INSERT INTO custody_mentions (event, subject, seq) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING',
  receiptsInsert: 'INSERT INTO custody_receipts (dock_id, recording_id, seq) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])',
  entryAt: 'SELECT line, hash FROM custody_entries WHERE seq = $1',
  entriesFrom: 'SELECT seq, line FROM custody_entries WHERE seq > $1 ORDER BY seq LIMIT $2',
  receiptEntry: 'SELECT e.seq, e.line FROM custody_receipts r JOIN custody_entries e ON e.seq = r.seq WHERE r.dock_id = $1 AND r.recording_id = $2',
  aboutInsert: 'INSERT INTO custody_about (subject, seq) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING',
  entriesAbout: 'SELECT e.seq, e.line FROM custody_entries e WHERE e.seq IN (SELECT seq FROM custody_about WHERE subject = ANY($1::text[])) ORDER BY e.seq LIMIT $2',
  checkpointInsert: 'INSERT INTO custody_checkpoints (seq, checkpoint) VALUES ($1, $2) ON CONFLICT (seq) DO NOTHING',
  checkpointLast: 'SELECT checkpoint FROM custody_checkpoints ORDER BY seq DESC LIMIT 1',
  checkpointsAll: 'SELECT checkpoint FROM custody_checkpoints ORDER BY seq',
  checkpointsUnexported: 'SELECT seq, checkpoint FROM custody_checkpoints WHERE exported_at IS NULL ORDER BY seq LIMIT $1',
  checkpointExported: 'UPDATE custody_checkpoints SET exported_at = clock_timestamp() WHERE seq = $1',
  checkpointBefore: 'SELECT max(seq) AS seq FROM custody_checkpoints WHERE seq < $1',
  checkpointsExported: 'SELECT seq, checkpoint FROM custody_checkpoints WHERE exported_at IS NOT NULL AND seq > $1 ORDER BY seq LIMIT $2',
  checkpointAt: 'SELECT checkpoint FROM custody_checkpoints WHERE seq = $1',
  entriesBetween: 'SELECT seq, line FROM custody_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq',
} as const;
