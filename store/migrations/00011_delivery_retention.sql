-- +goose Up
-- Retention deletes finished webhook deliveries (their attempts go with
-- them: ON DELETE CASCADE) by age. created_at never changes, so this index
-- costs one entry per delivery and nothing on its updates. Finished emails
-- are found through ix_emails_status (status, updated_at).
CREATE INDEX ix_whd_created ON webhook_deliveries (created_at);
