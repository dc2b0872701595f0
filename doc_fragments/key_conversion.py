"""Options of a key conversion request, shared by pg_convert_keys and its rehearsal
(module_utils/key_conversion_options.py builds the same spec)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  keys:
    description:
      - Key columns as C(schema.table.column), or C([auto]) for every primary key of O(source_type) in O(schemas).
    type: list
    elements: str
    default: [auto]
  scope:
    description:
      - C(keys) converts the keys and every column linked to them by FKs. C(all) also converts every other
        column of O(source_type) in O(schemas) (the app's contract that none remains).
    type: str
    choices: [keys, all]
    default: keys
  source_type:
    description: The type being replaced, as SQL (C(uuid), C(varchar(36))).
    type: str
    default: uuid
  target_type:
    description: The new type, as SQL.
    type: str
    default: varchar(36)
  collation:
    description:
      - A collation for the converted columns, for example C(C). Under C(C) canonical UUID text sorts
        bytewise, exactly as C(uuid) did, and index builds run several times faster than under a linguistic
        collation such as C(en_US.UTF-8) (see bench/bench_convert.py). Omit to keep the database default,
        which is what a plain C(String(36)) model column gets.
    type: str
  schemas:
    description: Schemas searched for C(auto) keys and for O(scope=all); the FK closure crosses schemas regardless.
    type: list
    elements: str
    default: [public]
  include_columns:
    description: Extra columns (C(schema.table.column)) to convert with their FK closure.
    type: list
    elements: str
    default: []
  include_arrays:
    description: Also convert arrays of O(source_type) (to arrays of O(target_type)).
    type: bool
    default: false
  fk_validation:
    description:
      - C(in_transaction) re-adds FKs validated, inside the lock window. C(after_commit) re-adds them C(NOT VALID)
        (new rows are checked at once; old rows did not change) and runs C(VALIDATE CONSTRAINT) right after commit,
        shortening the exclusive-lock window. FKs on partitioned tables always validate inside (PostgreSQL forbids
        C(NOT VALID) there); FKs that were C(NOT VALID) stay so.
    type: str
    choices: [in_transaction, after_commit]
    default: in_transaction
  index_build:
    description:
      - C(in_transaction) lets the rewrite rebuild every index of a rewritten table inside the lock window.
        C(after_commit) drops the secondary indexes (not unique, backing no constraint, not the replica identity,
        not clustered, not on a partitioned table) inside the transaction and builds them again with
        C(CREATE INDEX CONCURRENTLY) right after commit, from their captured definitions and with their comments;
        the lock window then holds only the heap rewrite and the unique indexes.
      - With either C(after_commit) choice the work after commit is first recorded, inside the conversion
        transaction, in the table C(key_conversion.pending_steps); each step removes its row, the table and schema
        go when it is empty, and a later run finishes what a dead or failed run left (an invalid index left by an
        interrupted build is dropped and built again). This needs C(CREATE) on the database.
    type: str
    choices: [in_transaction, after_commit]
    default: in_transaction
  value_check:
    description:
      - From uuid, how each new value is checked while the rewrite writes it (a temporary CHECK, no scan of its
        own). C(round_trip) casts it back to uuid and compares (exact; about a third of the rewrite's time).
        C(shape) checks 36 bytes with the hyphens in place, and relies for the lower-case hex digits on uuid's
        built-in output function, which the plan confirms does the cast (no C(pg_cast) entry overrides it);
        where one does, it checks C(round_trip). To uuid, the cast itself refuses anything that is not a UUID.
    type: str
    choices: [round_trip, shape]
    default: round_trip
  lock_timeout:
    description: Milliseconds to wait for all locks in one attempt.
    type: int
    default: 5000
  lock_retries:
    description: Further attempts after a lock timeout (exponential backoff with jitter).
    type: int
    default: 5
  lock_retry_delay:
    description: Seconds before the first retry (doubling after each).
    type: float
    default: 1.0
  statement_timeout:
    description: Milliseconds any one statement may run inside the transaction; 0 is no limit.
    type: int
    default: 0
  maintenance_work_mem:
    description:
      - Session maintenance_work_mem for the index rebuilds of the rewrite; C(auto) sizes it from the largest
        index rebuilt (twice its size, 64 MB to 1 GB).
    type: str
    default: auto
  after_commit_workers:
    description:
      - Connections that run the work after COMMIT at once (index builds, VALIDATE of FKs re-added NOT VALID,
        ANALYZE of the changed columns), one table per connection at a time. None of it blocks the application.
    type: int
    default: 2
  rewrite_mb_per_second:
    description: Assumed rewrite throughput for the plan's time estimate.
    type: float
    default: 50.0
"""
