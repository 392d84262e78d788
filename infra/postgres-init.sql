-- Run once by the postgres image on an empty data volume, as POSTGRES_USER (who then owns it).
-- POSTGRES_DB (aoi) is the catalog; the Prefect server keeps its own state in a second database.
CREATE DATABASE prefect;
