-- Applied migrations, in version order.
SELECT version, name, applied_at
FROM schema_migrations
ORDER BY version
