"""Options of a key conversion request, shared by pg_convert_keys and pg_convert_keys_rehearsal
(module_utils/key_conversion_options.py builds the matching argument spec)."""


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
      - C(all) (the default) converts the keys, every column linked to them by FKs, and every other column of
        O(source_type) (or of a domain over it) in O(schemas), the app's contract that none remains. C(keys)
        converts the keys and their FK closure only, and refuses by name while a function or trigger names a
        converted table and a column left unconverted, unless O(allow_unconverted_writers).
    type: str
    choices: [keys, all]
    default: all
  allow_unconverted_writers:
    description:
      - Run although functions or triggers whose body names a converted table also name a column of
        O(source_type) left unconverted (after the change they would write the new type into it). They are
        listed in the plan either way; set this only once each is reviewed.
    type: bool
    default: false
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
      - A collation for the converted columns, for example C(C). Omitted (the default), they keep the database
        default, which is what a plain C(String(36)) model column gets.
      - Not a default because it changes meaning for the application. Under C(C) canonical UUID text sorts as
        C(uuid) did and index builds run faster than under a linguistic collation, but the columns then sort and
        compare every other string the application may store bytewise (C(ABC) before C(a-b)), differ from what
        the models and migrations create, and a comparison with a column of another explicit collation fails
        (C(could not determine which collation to use)).
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
      - C(after_commit) (the default) re-adds FKs C(NOT VALID) (enforced for new rows at once; old rows are the
        same values cast the same way on both sides) and runs C(VALIDATE CONSTRAINT) right after commit, outside
        the exclusive-lock window; the module returns only once every FK is valid again, and fails naming the
        step otherwise (the next run finishes it). C(in_transaction) re-adds them validated inside the lock
        window. FKs on partitioned tables always validate inside (PostgreSQL forbids C(NOT VALID) there); FKs
        that were C(NOT VALID) stay so.
    type: str
    choices: [in_transaction, after_commit]
    default: after_commit
  index_build:
    description:
      - C(after_commit) (the default) drops the secondary indexes (not unique, backing no constraint, not the
        replica identity, not clustered, not on a partitioned table) inside the transaction and builds them again
        with C(CREATE INDEX CONCURRENTLY) right after commit, from their captured definitions and with their
        comments; the lock window then holds only the heap rewrite and the unique indexes. The module returns
        only once every one is built and valid (the role keeps maintenance mode on until then in recover.yml).
        C(in_transaction) lets the rewrite rebuild every index of a rewritten table inside the lock window.
      - With either C(after_commit) choice the work after commit is first recorded, inside the conversion
        transaction, in the table C(key_conversion.pending_steps); each step removes its row, the table and schema
        go when it is empty, and a later run finishes what a dead or failed run left (an invalid index left by an
        interrupted build is dropped and built again). This needs C(CREATE) on the database; where the role
        cannot keep the list, both stay C(in_transaction) and the plan says so in its notes.
    type: str
    choices: [in_transaction, after_commit]
    default: after_commit
  value_check:
    description:
      - From uuid, how each new value is checked while the rewrite writes it (a temporary CHECK, no scan of its
        own). C(shape) (the default) checks 36 bytes with the hyphens in place, and relies for the lower-case hex
        digits on uuid's built-in output function, which the plan confirms does the cast (no C(pg_cast) entry
        overrides it); where one does, it checks C(round_trip). Over that output both checks accept exactly the
        same values. C(round_trip) casts each value back to uuid and compares (about a third of the rewrite's
        time). To uuid, the cast itself refuses anything that is not a UUID.
    type: str
    choices: [round_trip, shape]
    default: shape
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
