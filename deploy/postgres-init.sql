-- docker-compose.yaml: PostgreSQL's first start creates the state DB next to Airflow's metadata DB
-- (owned by POSTGRES_USER). A managed PostgreSQL service would get its own role for it instead.
CREATE DATABASE cstf_state;
