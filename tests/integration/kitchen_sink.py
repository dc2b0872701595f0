"""The key conversion tests' kitchen sink: a schema with every object kind a conversion must
capture and recreate exactly (the ``sink`` and ``native_sink`` fixtures of test_convert_keys.py)."""

import re

KITCHEN_SINK = """
CREATE SCHEMA "Audit";
CREATE ROLE {reader} NOLOGIN;
CREATE TABLE organizations (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
                            owner_id uuid);
CREATE TABLE "Users" ("ID" uuid PRIMARY KEY DEFAULT gen_random_uuid(), organization_id uuid NOT NULL
                        REFERENCES organizations(id) ON DELETE CASCADE,
                      invited_by uuid REFERENCES "Users"("ID") ON DELETE SET NULL, email text);
ALTER TABLE organizations ADD CONSTRAINT "Owner FK" FOREIGN KEY (owner_id) REFERENCES "Users"("ID")
  DEFERRABLE INITIALLY DEFERRED;
CREATE TABLE documents (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), organization_id uuid NOT NULL
                          REFERENCES organizations(id), title text,
                        CONSTRAINT documents_org_id_key UNIQUE (organization_id, id),
                        CONSTRAINT title_len CHECK (length(title) < 200));
CREATE TABLE document_shares (organization_id uuid, document_id uuid, note text,
  FOREIGN KEY (organization_id, document_id) REFERENCES documents(organization_id, id) MATCH FULL
  ON UPDATE CASCADE DEFERRABLE);
CREATE TABLE "Audit"."Events" (id bigserial PRIMARY KEY, "Actor" uuid, document_id uuid);
ALTER TABLE "Audit"."Events" ADD CONSTRAINT events_doc FOREIGN KEY (document_id) REFERENCES documents(id);
CREATE TABLE measurements (id bigint, user_id uuid REFERENCES "Users"("ID"), at date NOT NULL)
  PARTITION BY RANGE (at);
CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX users_org_idx ON "Users" (organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX users_id_text_idx ON "Users" (("ID"::text));
CREATE VIEW org_members WITH (security_barrier) AS
  SELECT u."ID", u.organization_id, o.name FROM "Users" u JOIN organizations o ON o.id = u.organization_id;
CREATE VIEW "Org Members 2" AS SELECT * FROM org_members WHERE name IS NOT NULL;
COMMENT ON VIEW org_members IS 'members, it''s a view';
COMMENT ON COLUMN org_members.name IS 'organization name';
GRANT SELECT ON org_members TO {reader};
GRANT SELECT, INSERT ON "Org Members 2" TO PUBLIC;
CREATE MATERIALIZED VIEW doc_counts AS SELECT organization_id, count(*) AS n FROM documents GROUP BY 1;
CREATE UNIQUE INDEX doc_counts_org ON doc_counts (organization_id);
COMMENT ON INDEX doc_counts_org IS 'one row per organization';
CREATE MATERIALIZED VIEW doc_ids AS SELECT id FROM documents WITH NO DATA;
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Org Isolation" ON documents AS RESTRICTIVE FOR SELECT TO {reader}
  USING (organization_id::text = current_setting('app.current_org', true));
CREATE POLICY doc_insert ON documents FOR INSERT WITH CHECK (organization_id IS NOT NULL);
COMMENT ON POLICY doc_insert ON documents IS 'insert needs an org';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER user_org_change BEFORE UPDATE OF organization_id ON "Users"
  FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER user_inviter_change AFTER UPDATE ON "Users"
  FOR EACH ROW WHEN (OLD.invited_by IS DISTINCT FROM NEW.invited_by) EXECUTE FUNCTION touch();
ALTER TABLE "Users" DISABLE TRIGGER user_inviter_change;
COMMENT ON TRIGGER user_org_change ON "Users" IS 'audit org moves';
CREATE RULE shares_protect AS ON DELETE TO document_shares WHERE OLD.document_id IS NULL DO INSTEAD NOTHING;
COMMENT ON COLUMN "Users".organization_id IS 'the tenant';
GRANT SELECT (organization_id) ON "Users" TO {reader};
INSERT INTO organizations (name) SELECT 'org ' || g FROM generate_series(1, 20) g;
INSERT INTO "Users" (organization_id, email)
  SELECT id, name || '@example.com' FROM organizations CROSS JOIN generate_series(1, 5);
UPDATE "Users" u SET invited_by = (SELECT min("ID"::text)::uuid FROM "Users" x
                                    WHERE x.organization_id = u.organization_id AND x."ID" <> u."ID");
UPDATE organizations o SET owner_id = (SELECT min("ID"::text)::uuid FROM "Users" u WHERE u.organization_id = o.id);
INSERT INTO documents (organization_id, title) SELECT organization_id, email FROM "Users";
INSERT INTO document_shares SELECT organization_id, id, 'shared' FROM documents;
INSERT INTO "Audit"."Events" ("Actor", document_id) SELECT d.organization_id, d.id FROM documents d;
ALTER TABLE "Audit"."Events" ADD CONSTRAINT events_actor FOREIGN KEY ("Actor") REFERENCES "Users"("ID") NOT VALID;
INSERT INTO measurements SELECT g, u."ID", date '2026-03-01' FROM "Users" u, generate_series(1, 2) g;
REFRESH MATERIALIZED VIEW doc_counts;
"""
# Note: "Audit"."Events"."Actor" holds organization ids (not users): its FK is
# NOT VALID, and must stay so.


def kitchen_sink_sql(reader: str, key_type: str = "uuid") -> str:
    """The schema with its key columns of key_type (casts in the data stay uuid)."""
    sql = KITCHEN_SINK.replace("CREATE ROLE {reader} NOLOGIN;", "").format(reader=reader)
    if key_type != "uuid":
        sql = re.sub(r"\buuid\b(?!\()", key_type, sql).replace(f"::{key_type}", "::uuid")
    return sql
